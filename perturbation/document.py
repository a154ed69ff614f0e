"""The text under analysis, prepared once and shared by every detector.

Detectors receive a `Document`, never a bare string, so language detection, lower-casing,
sentence boundaries and negation scopes are computed once per message (the rules engine's
latency budget is a few milliseconds for 2,000 characters); `per_document` keeps anything
else a detector derives from the message on the Document for the other detectors.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, wraps
from typing import TYPE_CHECKING, Any, TypeVar

from perturbation.analysis import Language

if TYPE_CHECKING:
    from perturbation.patterns import TextIndex

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
    derived: dict[Callable[..., Any], Any] = field(
        init=False, default_factory=dict, repr=False, compare=False
    )  # what `per_document` functions computed for this message

    def __post_init__(self) -> None:
        self.lower = lower_keeping_offsets(self.text)

    @classmethod
    def of(cls, text: str, language: Language | None = None) -> Document:
        return cls(text, language or detect_language(text))

    @cached_property
    def sentences(self) -> tuple[Sentence, ...]:
        """Sentence-like units with their offsets (clauses split at terminal punctuation)."""
        text = self.text
        out: list[Sentence] = []
        start = 0
        for match in _SENTENCE_END.finditer(text):
            end = match.start()
            if end > start and not text[start:end].isspace():
                out.append(Sentence(start, end, text[start:end]))
            start = match.end()
        if start < len(text) and not text[start:].isspace():
            out.append(Sentence(start, len(text), text[start:]))
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

    def starts_negated(self, start: int) -> bool:
        """Whether a phrase starting at `start` starts inside a negation scope. Lexicon cues
        (red flags, emotion) are denied this way rather than by containment, because a cue
        may run past the end of the scope that denies it ("no pain in my chest": English
        scopes stop at "my")."""
        starts, furthest = self._negation_index
        i = bisect_right(starts, start)
        return i > 0 and start < furthest[i - 1]

    @cached_property
    def cue_index(self) -> TextIndex:
        """What the lexicon-cue matcher looks up (`perturbation.patterns`), built once and
        shared by the red-flag and emotion detectors."""
        from perturbation.patterns import TextIndex

        return TextIndex(self)


T = TypeVar("T")


def per_document(compute: Callable[[Document], T]) -> Callable[[Document], T]:
    """`compute(doc)` once per document: the answer is kept on the document (in
    `Document.derived`), so every detector that asks the same question about one message
    shares one computation, and it goes away with the message. Treat it as read-only."""

    @wraps(compute)
    def cached(doc: Document) -> T:
        if compute in doc.derived:
            return doc.derived[compute]
        value = doc.derived[compute] = compute(doc)
        return value

    return cached


def lower_keeping_offsets(text: str) -> str:
    """`text.lower()` with every offset kept, so a span found in it is the same span of the
    original: a character that lower-cases to several ("İ" -> "i̇") keeps only the first."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c.lower()[0] for c in text)
