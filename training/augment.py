"""Perturbation augmentation: perturbed copies of the patient's turn, with the same targets.

PrMed's robustness recipe: the model sees the same question written the way real patients
write it (slang, typos, emotion, irrelevant detail, ...) and learns to give the same answer.
The intake synthesizer does the perturbing; it never touches negations and never adds a
symptom, so the original target stays correct for the copy.

Copies are appended after the originals, each with `"augmented": {"labels": [subcategory
ids], "severity"}`. Which records are copied, and how each is perturbed, depend only on the
settings and the records, so a run can be repeated exactly. Apply it before
`training.reasoning.with_reasoning`, so that a copy's five-step target reads the perturbed
message.
"""

from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass
from typing import Any, Literal

Severity = Literal["light", "moderate", "heavy"]
SEVERITIES: tuple[Severity, ...] = ("light", "moderate", "heavy")


@dataclass(frozen=True)
class AugmentSettings:
    """`ratio`: the share of eligible records to copy (0: none, 1: all), rounded half up."""

    ratio: float = 0.0
    severity: Severity = "moderate"
    seed: int = 0

    def __post_init__(self) -> None:
        ratio = self.ratio
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio <= 1:
            raise ValueError(f"augment.ratio must be a number from 0 to 1, not {ratio!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(
                f"augment.severity must be light, moderate or heavy, not {self.severity!r}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"augment.seed must be a whole number, not {self.seed!r}")


def augment_records(
    records: list[dict[str, Any]], settings: AugmentSettings
) -> list[dict[str, Any]]:
    """`records` followed by perturbed copies of a seeded `ratio` share of the eligible ones.

    Eligible: chat, preference and rubric records (normalised by `training.data`), whose last
    user message is perturbed. A copy the synthesizer could not change is left out.
    """
    eligible = [index for index, record in enumerate(records) if _turns_key(record)]
    count = math.floor(settings.ratio * len(eligible) + 0.5)
    if count == 0:
        return list(records)
    from perturbation.synthesizer import synthesize

    rng = random.Random(settings.seed)
    copies = []
    for index in sorted(rng.sample(eligible, count)):
        record = records[index]
        key = _turns_key(record)
        turns = record[key]
        last_user = max(n for n, turn in enumerate(turns) if turn["role"] == "user")
        perturbed = synthesize(
            turns[last_user]["content"], severity=settings.severity, seed=rng.randrange(2**32)
        )
        if perturbed.text == perturbed.original:
            continue
        augmented = copy.deepcopy(record)
        augmented[key][last_user]["content"] = perturbed.text
        augmented["augmented"] = {"labels": list(perturbed.labels), "severity": settings.severity}
        copies.append(augmented)
    return [*records, *copies]


def _turns_key(record: dict[str, Any]) -> str:
    """Where the record's conversation is ("messages" or "prompt"); "" if it has none."""
    for key in ("messages", "prompt"):
        turns = record.get(key)
        if isinstance(turns, list) and any(turn.get("role") == "user" for turn in turns):
            return key
    return ""
