"""Seeded perturbation synthesizer: clean patient text in, realistically messy text out.

Why: detectors, normalisers and fine-tuning data need messages with KNOWN perturbations
(PrMed's 12 subcategories) in English and Simplified Chinese. `synthesize` is deterministic
for (text, subcategories, severity, seed) — it uses its own `random.Random(seed)`, never the
global RNG — and returns every edit with its span in the perturbed text and the wording it
replaced. Two safety rules hold for every output: negations ("no fever", "没发烧") are never
touched, and no symptom is ever added (inserted text is emotion, framing or context only).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from perturbation.analysis import Language
from perturbation.document import detect_language
from perturbation.synth_buffer import Buffer, Edit
from perturbation.synth_ops import (
    Op,
    incomplete_grammar,
    insert_phrase,
    lexicon,
    perspective,
    prefix_clause,
    reversed_order,
)
from perturbation.synth_words import dialect, internet_slang, spelling_error, vague_expression
from perturbation.taxonomy import BY_ID

Severity = Literal["light", "moderate", "heavy"]
_STRENGTH: dict[str, int] = {"light": 1, "moderate": 2, "heavy": 3}

__all__ = ["Edit", "Severity", "Synthesized", "synthesize"]


@dataclass(frozen=True)
class Synthesized:
    """A perturbed message, the clean original, and exactly what was done to it."""

    text: str
    original: str
    language: Language
    labels: tuple[str, ...]
    edits: tuple[Edit, ...]


def _repressed(buf: Buffer, lex: Mapping[str, Any], rng: random.Random, strength: int) -> bool:
    sub = "emotional.repressed"
    if strength == 3 or rng.random() < 0.5:
        prefix_clause(buf, str(rng.choice(lex["repressed_prefixes"])), sub)
    if strength == 3 or not any(e.subcategory == sub for e in buf.edits):
        insert_phrase(buf, len(buf.text), str(rng.choice(lex["repressed_suffixes"])), sub)
    return True


def _sentence_op(key: str, sub: str, where: str) -> Op:
    """An operation that inserts one (heavy: two) whole sentences from `lex[key]`."""

    def apply(buf: Buffer, lex: Mapping[str, Any], rng: random.Random, strength: int) -> bool:
        phrases = list(lex[key])
        for _ in range(2 if strength == 3 else 1):
            phrase = phrases.pop(rng.randrange(len(phrases)))
            points = buf.boundaries()
            if where == "end":
                pos = len(buf.text)
            elif where == "middle" and len(points) > 2:
                pos = rng.choice(points[1:-1])
            else:
                pos = rng.choice([points[0], points[-1]])
            insert_phrase(buf, pos, phrase, sub)
        return True

    apply.__doc__ = f"Insert sentences from synth.yaml `{key}` ({sub})."
    return apply


def _misdiagnosis(buf: Buffer, lex: Mapping[str, Any], rng: random.Random, strength: int) -> bool:
    """Self-diagnosis matching the complaint ('I googled it and I think it's IBS', '百度说是…')."""
    del strength  # one self-diagnosis is enough at any severity
    conditions = lex["misdiagnosis_conditions"]
    lower = buf.text.lower()
    options = next((v for k, v in conditions.items() if k != "default" and k in lower), None)
    condition = rng.choice(options or conditions["default"])
    phrase = str(rng.choice(lex["misdiagnosis_templates"])).format(x=condition)
    insert_phrase(buf, len(buf.text), phrase, "contextual.subjective_misdiagnosis")
    return True


# Canonical application order: reordering first (it moves whole sentences), then rewording,
# then word-level edits, then inserted sentences (which must not be reworded themselves).
_OPS: dict[str, Op] = {
    "structural.reversed_order": reversed_order,
    "structural.perspective_misalignment": perspective,
    "structural.incomplete_grammar": incomplete_grammar,
    "contextual.vague_expression": vague_expression,
    "formal.dialect": dialect,
    "formal.internet_slang": internet_slang,
    "formal.spelling_error": spelling_error,
    "emotional.repressed": _repressed,
    "emotional.negative": _sentence_op("negative", "emotional.negative", "edge"),
    "contextual.subjective_misdiagnosis": _misdiagnosis,
    "contextual.irrelevant_information": _sentence_op(
        "irrelevant", "contextual.irrelevant_information", "middle"
    ),
    "emotional.positive": _sentence_op("positive", "emotional.positive", "end"),
}
assert set(_OPS) == set(BY_ID), "every taxonomy subcategory needs an operation"


@cache
def _cue_pattern(language: Language) -> re.Pattern[str]:
    flags = 0 if language == "zh" else re.IGNORECASE
    return re.compile(str(lexicon(language)["negation_cues"]), flags)


def _applicable(sub: str, text: str, language: Language) -> bool:
    buf = Buffer(text, language, _cue_pattern(language))
    return _OPS[sub](buf, lexicon(language), random.Random(0), 2)


def _choose(text: str, language: Language, rng: random.Random, strength: int) -> list[str]:
    """A severity-sized random subset of the subcategories that can apply to this text."""
    count = {1: 1, 2: rng.choice((2, 3)), 3: rng.randint(4, 6)}[strength]
    candidates = list(_OPS)
    rng.shuffle(candidates)
    chosen: list[str] = []
    for sub in candidates:
        if len(chosen) == count:
            break
        if _applicable(sub, text, language):
            chosen.append(sub)
    return chosen


def synthesize(
    text: str,
    subcategories: Iterable[str] | None = None,
    severity: Severity = "moderate",
    seed: int = 0,
    language: Language | None = None,
) -> Synthesized:
    """Perturb `text` with the given subcategories (None: a random, severity-sized subset).

    Subcategories that cannot apply (e.g. reversed order on a one-clause message) are left
    out of `labels`; `edits` are sorted by position and every span is valid in `text`.
    """
    if severity not in _STRENGTH:
        raise ValueError(f"severity must be light, moderate or heavy, not {severity!r}")
    lang: Language = language or detect_language(text)
    requested = None if subcategories is None else list(dict.fromkeys(subcategories))
    for sub in requested or ():
        if sub not in BY_ID:
            raise ValueError(f"unknown perturbation subcategory {sub!r}")
    if not text.strip():
        return Synthesized(text, text, lang, (), ())
    rng = random.Random(seed)
    strength = _STRENGTH[severity]
    wanted = set(_choose(text, lang, rng, strength) if requested is None else requested)
    buf = Buffer(text, lang, _cue_pattern(lang))
    lex = lexicon(lang)
    labels = [sub for sub, op in _OPS.items() if sub in wanted and op(buf, lex, rng, strength)]
    edits = tuple(sorted(buf.edits, key=lambda e: (e.span, e.subcategory)))
    return Synthesized(buf.text, text, lang, tuple(labels), edits)
