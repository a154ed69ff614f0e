"""The text under analysis, prepared once and shared by every detector.

Detectors receive a `Document`, never a bare string, so language detection, lower-casing,
sentence boundaries and negation scopes are computed once per message (the rules engine's
latency budget is a few milliseconds for 2,000 characters).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import cached_property

from perturbation.analysis import Language

_CJK = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")
_LATIN = re.compile(r"[A-Za-z]")
_SENTENCE_END = re.compile(r"[.!?。！？；;\n]+")


def detect_language(text: str) -> Language:
    """'zh' when Han characters are at least a fifth of the letters, else 'en'.

    Mixed messages (Chinese with English drug names or "CT") are common; a ratio rather than
    "any Han character" keeps an English message with one Chinese word in English.
    """
    han = len(_CJK.findall(text))
    latin = len(_LATIN.findall(text))
    return "zh" if han and han * 5 >= han + latin else "en"


@dataclass(frozen=True)
class Sentence:
    start: int
    end: int
    text: str


@dataclass
class Document:
    text: str
    language: Language
    lower: str = field(init=False)

    def __post_init__(self) -> None:
        self.lower = self.text.lower()

    @classmethod
    def of(cls, text: str, language: Language | None = None) -> Document:
        return cls(text, language or detect_language(text))

    @cached_property
    def sentences(self) -> tuple[Sentence, ...]:
        """Sentence-like units with their offsets (clauses split at terminal punctuation)."""
        out: list[Sentence] = []
        start = 0
        for match in _SENTENCE_END.finditer(self.text):
            if match.start() > start and self.text[start : match.start()].strip():
                out.append(Sentence(start, match.start(), self.text[start : match.start()]))
            start = match.end()
        if start < len(self.text) and self.text[start:].strip():
            out.append(Sentence(start, len(self.text), self.text[start:]))
        return tuple(out)

    @cached_property
    def negated(self) -> tuple[tuple[int, int], ...]:
        """Character ranges under a negation ("no fever", "没发烧"): see `negation`."""
        from perturbation.negation import negation_scopes

        return negation_scopes(self)

    @cached_property
    def _negation_index(self) -> tuple[list[int], list[int]]:
        """Scope starts in order, and for each prefix of that order the furthest end: a
        scope contains [start, end) iff some scope starting at or before `start` ends at or
        after `end`, i.e. iff that prefix maximum reaches `end` (scopes may overlap)."""
        starts: list[int] = []
        furthest: list[int] = []
        best = -1
        for s, e in sorted(self.negated):
            best = max(best, e)
            starts.append(s)
            furthest.append(best)
        return starts, furthest

    def is_negated(self, start: int, end: int) -> bool:
        """Whether [start, end) lies wholly inside one negation scope; O(log n), since
        detectors ask this for every candidate on long messages."""
        starts, furthest = self._negation_index
        i = bisect_right(starts, start)
        return i > 0 and end <= furthest[i - 1]
