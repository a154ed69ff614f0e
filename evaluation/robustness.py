"""PrMed-style robustness: the same items in clean and in patient-like wording, per intake mode.

Each item is asked as written (`clean`), with its case description perturbed by the intake
synthesizer at each severity (`light`, `moderate`, `heavy`: a seeded, severity-sized subset
of the 12 subcategories, different per item), and, for JMED, as the patient's own dialogue
in place of the clinician's summary (`dialogue`). The closing question ("Which of the
following is the most likely diagnosis?") is kept as written: the perturbation models how a
patient describes a case, not how an examiner asks about it, and a scrambled question would
measure reading of the task rather than of the case.

Every variant is asked under each gateway intake mode (`off`, `annotate`, `normalize`, the
request's `clinical.intake`), and the drop is measured against the clean wording under the
same mode, paired item by item (Newcombe's interval for paired proportions), so a mode is
judged by how much of the perturbation's cost it wins back.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from evaluation.items import McqItem
from evaluation.mcq import Asker, AskSettings, ItemResult
from evaluation.stats import Proportion, paired_drop
from perturbation.analysis import Language
from perturbation.synthesizer import Severity, synthesize

SEVERITIES: tuple[Severity, ...] = ("light", "moderate", "heavy")
MODES = ("off", "annotate", "normalize")
DIALOGUE = "dialogue"

# The closing question: the last sentence, when it asks (ends in ? or ？). A Chinese question
# often opens with a lead-in clause ("根据患者的症状和检查结果，最有可能的诊断是什么？"),
# which stays with it.
_CLOSING_QUESTION = re.compile(r"(?s)^(.*?[.!。！;；\n])\s*([^.!。！;；\n]*[?？][\"”'’)）]*\s*)$")


def split_question(question: str) -> tuple[str, str]:
    """(case description, closing question); the whole text is the case when nothing asks.

    >>> split_question("A 45-year-old man has chest pain. Which drug is best?")
    ('A 45-year-old man has chest pain.', 'Which drug is best?')
    >>> split_question("患者男，26岁，拇指抖动。最有可能的诊断是什么？")
    ('患者男，26岁，拇指抖动。', '最有可能的诊断是什么？')
    >>> split_question("Chest pain since this morning")
    ('Chest pain since this morning', '')
    """
    match = _CLOSING_QUESTION.match(question.strip())
    if match is None:
        return question.strip(), ""
    return match.group(1).strip(), match.group(2).strip()


def _join(case: str, ask: str, language: str) -> str:
    if not ask:
        return case
    return f"{case}{'' if language == 'zh' else ' '}{ask}" if case else ask


def item_seed(seed: int, item_id: str) -> int:
    """A per-item synthesizer seed, the same on every machine (Python's `hash` is salted)."""
    digest = hashlib.sha256(f"{seed}\0{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def variant_question(item: McqItem, variant: str, seed: int) -> str | None:
    """The question text `item` is asked with under `variant`; None when the variant does
    not apply to it (a dialogue for an item without one)."""
    case, ask = split_question(item.question)
    if variant == "clean":
        return item.question
    if variant == DIALOGUE:
        if not item.dialogue:
            return None
        return _join(item.dialogue.strip(), ask, item.language)
    if variant not in SEVERITIES:
        raise ValueError(f"unknown variant {variant!r}")
    language: Language = "zh" if item.language == "zh" else "en"
    perturbed = synthesize(case, None, variant, item_seed(seed, item.id), language)
    return _join(perturbed.text, ask, item.language)


def _question(item: McqItem, *, variant: str, seed: int) -> str | None:
    return variant_question(item, variant, seed)


@dataclass(frozen=True)
class RobustnessPlan:
    modes: tuple[str, ...] = MODES
    severities: tuple[Severity, ...] = SEVERITIES
    dialogue: bool = True
    seed: int = 0

    def variants(self, items: Sequence[McqItem]) -> tuple[str, ...]:
        with_dialogue = self.dialogue and any(item.dialogue for item in items)
        return ("clean", *self.severities, *((DIALOGUE,) if with_dialogue else ()))


async def run_robustness(
    asker: Asker, items: Sequence[McqItem], plan: RobustnessPlan, settings: AskSettings
) -> dict[tuple[str, str], list[ItemResult]]:
    """Results per (mode, variant), each in item order over the items the variant applies to."""
    clinical = dict(settings.clinical or {})
    outcomes: dict[tuple[str, str], list[ItemResult]] = {}
    for mode in plan.modes:
        mode_settings = replace(settings, clinical={**clinical, "intake": mode})
        for variant in plan.variants(items):
            question = functools.partial(_question, variant=variant, seed=plan.seed)
            asked = [item for item in items if question(item)]
            results = await asker.ask_all(asked, mode_settings, question)
            outcomes[(mode, variant)] = results
    return outcomes


def summarise_robustness(
    outcomes: Mapping[tuple[str, str], Sequence[ItemResult]], plan: RobustnessPlan
) -> dict[str, Any]:
    """Accuracy per condition and the paired drop of each variant against clean wording."""
    conditions = []
    drops = []
    for (mode, variant), results in outcomes.items():
        accuracy = Proportion(sum(r.correct for r in results), len(results))
        conditions.append(
            {
                "mode": mode,
                "variant": variant,
                "n": accuracy.n,
                "correct": accuracy.k,
                "accuracy": accuracy.accuracy,
                "ci95": list(accuracy.ci95),
                "invalid_rate": sum(r.invalid for r in results) / len(results) if results else 0.0,
                "errors": sum(r.error is not None for r in results),
            }
        )
        if variant == "clean":
            continue
        clean = {r.id: r.correct for r in outcomes[(mode, "clean")]}
        paired = [(clean[r.id], r.correct) for r in results if r.id in clean]
        drop = paired_drop([c for c, _ in paired], [v for _, v in paired])
        drops.append(
            {
                "mode": mode,
                "variant": variant,
                "against": "clean",
                "n": drop.n,
                "points": drop.points,
                "ci95": list(drop.ci95),
            }
        )
    return {
        "modes": list(plan.modes),
        "variants": list(dict.fromkeys(variant for _, variant in outcomes)),
        "conditions": conditions,
        "drops": drops,
    }
