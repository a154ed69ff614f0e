"""Emotion perception: the overall feeling of a message and its emotional perturbations.

Why it matters clinically: fear and anger colour how a patient reports symptoms, and the
opposite, minimising ("it's probably nothing", "没什么大事", "不想麻烦你们"), is how severe
symptoms get hidden. So the label `repressed` wins over mild negative cues whenever the
patient is downplaying something while describing symptoms; `mixed` is kept for strong
positive and strong negative feelings together.

Cues are data (`lexicons/emotion.yaml`), compiled once and matched with the red-flag
matcher (`perturbation.patterns.compile_branches`: literal prefilters, English on the
lower-cased text). A cue that starts inside a negation scope ("not scared", "不害怕") does
not count. Intensity comes
from cue strength, intensifiers right before a cue ("so scared", "好害怕"), exclamation marks,
repeated punctuation and shouting in capitals.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from perturbation.analysis import Emotion, EmotionLabel, Finding, Span
from perturbation.document import Document
from perturbation.lexicon import LexiconError, load
from perturbation.patterns import BranchSet, compile_branches, found_any, scan

Kind = Literal["positive", "negative", "repressed"]
_SUBCATEGORY: dict[Kind, str] = {
    "positive": "emotional.positive",
    "negative": "emotional.negative",
    "repressed": "emotional.repressed",
}
_STRENGTH = {"strong": 0.6, "mild": 0.35, "repressed": 0.45}
_CONFIDENCE = {"strong": 0.9, "mild": 0.7}
_INTENSIFIER_REACH = 12  # characters between an intensifier and the cue it strengthens
_BOUNDARY = re.compile(r"[.!?。！？;；\n]")


@dataclass(frozen=True)
class Cue:
    kind: Kind
    strong: bool
    start: int
    end: int
    intensified: bool = False


Pair = tuple[BranchSet, BranchSet]  # English, Chinese


@dataclass(frozen=True)
class Tables:
    cues: tuple[tuple[Kind, bool, Pair], ...]
    intensifiers: Pair
    hints: Pair
    repeated: re.Pattern[str]
    exclamation: re.Pattern[str]
    caps: re.Pattern[str]


def _pair(entry: Any, where: str) -> Pair:
    en = compile_branches(entry.get("en"), f"emotion lexicon {where}.en", True)
    zh = compile_branches(entry.get("zh"), f"emotion lexicon {where}.zh", False)
    if not en.size:
        raise LexiconError(f"emotion lexicon: {where}.en is empty")
    return en, zh


@cache
def tables() -> Tables:
    """The lexicon compiled once per process, with the same prefilters as the red flags."""
    data = load("emotion")
    cues: list[tuple[Kind, bool, Pair]] = []
    kinds: tuple[Kind, ...] = ("positive", "negative")
    for kind in kinds:
        for tier in ("strong", "mild"):
            cues.append(
                (kind, tier == "strong", _pair(data["cues"][kind][tier], f"cues.{kind}.{tier}"))
            )
    cues.append(("repressed", False, _pair(data["cues"]["repressed"], "cues.repressed")))
    emphasis = data["emphasis"]
    return Tables(
        cues=tuple(cues),
        intensifiers=_pair(data["intensifiers"], "intensifiers"),
        hints=_pair(data["symptom_hints"], "symptom_hints"),
        repeated=re.compile(emphasis["repeated_punctuation"]),
        exclamation=re.compile(emphasis["exclamation"]),
        caps=re.compile(emphasis["caps_word"]),
    )


class _Scanner:
    """Per-message state shared by every cue list: the text index and negation scopes."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.has_cjk = doc.cue_index.has_cjk

    def spans(self, pair: Pair) -> list[tuple[int, int]]:
        """Spans of matches that are not denied ("not scared", "不害怕")."""
        return scan(pair if self.has_cjk else pair[:1], self.doc)


def _intensified(text: str, start: int, intensifier_ends: list[int]) -> bool:
    """An intensifier ends at most a few characters before `start`, in the same clause."""
    i = bisect_right(intensifier_ends, start) - 1
    while i >= 0 and intensifier_ends[i] >= start - _INTENSIFIER_REACH:
        if not _BOUNDARY.search(text, intensifier_ends[i], start):
            return True
        i -= 1
    return False


def _cues(scanner: _Scanner, t: Tables) -> list[Cue]:
    ends = sorted(end for _, end in scanner.spans(t.intensifiers))
    found: list[Cue] = []
    for kind, strong, pair in t.cues:
        for start, end in scanner.spans(pair):
            intensified = kind != "repressed" and _intensified(scanner.doc.text, start, ends)
            found.append(Cue(kind, strong or intensified, start, end, intensified))
    # Leftmost-longest: "not that bad" is one repressed cue, not also a negative "bad".
    found.sort(key=lambda c: (c.start, -(c.end - c.start)))
    kept: list[Cue] = []
    last_end = -1
    for cue in found:
        if cue.start >= last_end:
            kept.append(cue)
            last_end = cue.end
    return kept


def _has_symptoms(scanner: _Scanner, t: Tables) -> bool:
    """Whether a (non-denied) symptom word is present. A small list of its own rather than
    `perturbation.symptoms`, which would pull simple_icd_10_cm in just for a yes/no."""
    return found_any(t.hints if scanner.has_cjk else t.hints[:1], scanner.doc)


def _emphasis(doc: Document, t: Tables, cues: list[Cue]) -> float:
    """What raises intensity above the strongest cue: more cues, intensifiers, !, ?!, CAPS."""
    extra = min(0.16, 0.08 * (len(cues) - 1))
    extra += min(0.24, 0.08 * sum(1 for c in cues if c.intensified))
    extra += min(0.15, 0.05 * len(t.exclamation.findall(doc.text)))
    if t.repeated.search(doc.text):
        extra += 0.1
    if t.caps.search(doc.text):
        extra += 0.1
    return extra


def _strength(cue: Cue) -> float:
    if cue.kind == "repressed":
        return _STRENGTH["repressed"]
    return _STRENGTH["strong" if cue.strong else "mild"]


def _label(cues: list[Cue], symptomatic: bool) -> tuple[EmotionLabel, list[Cue]]:
    pos = [c for c in cues if c.kind == "positive"]
    neg = [c for c in cues if c.kind == "negative"]
    rep = [c for c in cues if c.kind == "repressed"]
    pos_strong = any(c.strong for c in pos)
    neg_strong = any(c.strong for c in neg)
    if pos_strong and neg_strong:
        return "mixed", pos + neg
    if rep and symptomatic and not neg_strong:
        return "repressed", rep
    score_pos = sum(_strength(c) for c in pos)
    score_neg = sum(_strength(c) for c in neg)
    if neg and score_neg >= score_pos:
        return "negative", neg
    if pos:
        return "positive", pos
    return "neutral", []


def perceive(doc: Document) -> tuple[Emotion, list[Finding]]:
    """The message's overall Emotion and one Finding per emotional cue (no corrections)."""
    t = tables()
    scanner = _Scanner(doc)
    cues = _cues(scanner, t)
    if not cues:
        return Emotion("neutral", 0.0), []
    # only minimising (a repressed cue) reads differently when symptoms are described
    symptomatic = any(c.kind == "repressed" for c in cues) and _has_symptoms(scanner, t)
    findings = []
    for cue in cues:
        if cue.kind == "repressed":
            confidence = 0.85 if symptomatic else 0.6
        else:
            confidence = _CONFIDENCE["strong" if cue.strong else "mild"]
        text = doc.text[cue.start : cue.end]
        findings.append(Finding(_SUBCATEGORY[cue.kind], cue.start, cue.end, text, confidence))
    label, support = _label(cues, symptomatic)
    if label == "neutral":
        return Emotion("neutral", 0.0), findings
    base = max(_strength(c) for c in support)
    intensity = min(1.0, base + _emphasis(doc, t, support))
    evidence = tuple(Span(c.start, c.end, doc.text[c.start : c.end]) for c in support)
    return Emotion(label, round(intensity, 3), evidence), findings
