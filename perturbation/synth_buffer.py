"""An editable text that remembers every edit and keeps negations untouchable.

The synthesizer applies many small edits one after another; each edit's span must stay
valid in the final text (so tests and training data can point at exactly what was
perturbed), and no edit may touch a negation cue or its scope ("no fever", "没发烧"), because
a synthetic example that silently turns a denied symptom into a present one would teach a
model the one mistake the intake pipeline must never make.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from perturbation.analysis import Language
from perturbation.document import Document

# a "." inside "38.5" or "e.g." does not end an English sentence
_EN_SENTENCE = re.compile(r"(?:[^.!?\n]|[.!?](?=[^\s.!?]))+(?:[.!?\n]+\s*|$)")
_ZH_SENTENCE = re.compile(r"[^。！？!?；;\n]*[。！？!?；;\n]+\s*|[^。！？!?；;\n]+$")
_EN_CUE_TAIL = re.compile(r"(?:\s+[\w'-]+){0,2}")  # a pseudo-negation's symptom: "can't breathe"
_ZH_CUE_TAIL = 4
# the words that END a scope ("..., my throat", "and I", "但是") must stay, or the scope would
# run on over a symptom the patient does have
_EN_SCOPE_TAIL = re.compile(r"[\s,]*[\w']+(?:\s+[\w']+)?")
_ZH_SCOPE_TAIL = 3


class Edit(NamedTuple):
    """One applied perturbation: `text` now sits at `span` [start, end) of the perturbed text.

    `original` is the wording it replaced ("" for an insertion), so a correction step or a
    round-trip test can recover every key term ("diarea" -> "diarrhea").
    """

    subcategory: str
    span: tuple[int, int]
    text: str
    original: str


class Buffer:
    """The text being perturbed plus its edits, with spans kept in step on every change."""

    def __init__(self, text: str, language: Language, negation_cues: re.Pattern[str]) -> None:
        self.text = text
        self.language: Language = language
        self.edits: list[Edit] = []
        self._cues = negation_cues
        self._protected: list[tuple[int, int]] | None = None

    def replace(self, start: int, end: int, new: str, subcategory: str | None) -> None:
        """Replace [start, end) by `new`; record it unless `subcategory` is None (glue)."""
        delta = len(new) - (end - start)
        shifted: list[Edit] = []
        for edit in self.edits:
            s, e = edit.span
            if s >= end and not (s == e == start == end):
                edit = edit._replace(span=(s + delta, e + delta))
            shifted.append(edit)
        self.edits = shifted
        self.text = self.text[:start] + new + self.text[end:]
        if subcategory is not None:
            self.edits.append(Edit(subcategory, (start, start + len(new)), new, ""))
        self._protected = None

    def record(self, subcategory: str, start: int, end: int, original: str) -> None:
        """Attach `original` to the edit just made at [start, end) (for replacements)."""
        last = self.edits[-1]
        assert last.span == (start, end) and last.subcategory == subcategory
        self.edits[-1] = last._replace(original=original)

    def protected(self) -> list[tuple[int, int]]:
        """Negation cues with a short tail, their NegEx scopes and terminators, earlier edits."""
        if self._protected is None:
            ranges = [edit.span for edit in self.edits]
            for match in self._cues.finditer(self.text):
                if self.language == "zh":
                    tail = min(len(self.text), match.end() + _ZH_CUE_TAIL)
                else:
                    tail_match = _EN_CUE_TAIL.match(self.text, match.end())
                    tail = tail_match.end() if tail_match else match.end()
                ranges.append((match.start(), tail))
            for start, end in Document(self.text, self.language).negated:
                if self.language == "zh":
                    end = min(len(self.text), end + _ZH_SCOPE_TAIL)
                else:
                    tail_match = _EN_SCOPE_TAIL.match(self.text, end)
                    end = tail_match.end() if tail_match else end
                ranges.append((start, end))
            self._protected = ranges
        return self._protected

    def is_free(self, start: int, end: int) -> bool:
        """True when [start, end) overlaps no protected range (touching is allowed)."""
        for s, e in self.protected():
            if start == end:
                if s < start < e:
                    return False
            elif start < e and s < end:
                return False
        return True

    def sentences(self) -> list[tuple[int, int]]:
        """Sentence spans including their terminal punctuation and trailing space."""
        pattern = _ZH_SENTENCE if self.language == "zh" else _EN_SENTENCE
        return [m.span() for m in pattern.finditer(self.text) if m.group().strip()]

    def boundaries(self) -> list[int]:
        """Offsets where a whole new sentence may be inserted without splitting one."""
        points = {0, len(self.text)}
        points.update(end for _, end in self.sentences())
        return sorted(p for p in points if self.is_free(p, p))
