"""Several cue lists found in one pass over a message, each exactly as its own scan would.

Why: a detector module asks the same message about a dozen English word lists (hedges,
sources, topics, time anchors ...), and every `finditer` of a `word_regex` costs a walk of
the whole message, a look-behind at each of its 2,000 positions. One pattern instead
stops only at word starts where some form of some list matches (a look-ahead on the union
of the lists), and reads there, in one look-ahead group per list, what that list's own
pattern matches. Per list, the hits that start inside its previous hit are dropped, which
is exactly what `finditer` reports (a list's match at a position does not depend on where
the scan started). Chinese patterns have no look-behind and are fast on their own (`re`
skips to their first characters), so Chinese lists are still scanned one by one.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from perturbation.document import Document, per_document
from perturbation.lexicon import LexiconError
from perturbation.symptoms import alternation, word_regex

Span = tuple[int, int]


class CueScan:
    """Named word lists of one language: `find(doc)` gives, per name, the spans that
    `patterns[name].finditer(doc.lower)` reports (kept on the document); `patterns` serve
    searches within part of a message."""

    def __init__(self, lists: Mapping[str, Collection[Any]], english: bool) -> None:
        self.names = tuple(lists)
        self.patterns = {name: word_regex(words, english) for name, words in lists.items()}
        self._combined = _combined(lists) if english else None
        self.find = per_document(self._find)

    def _find(self, doc: Document) -> dict[str, list[Span]]:
        if self._combined is None:
            return {
                name: [match.span() for match in pattern.finditer(doc.lower)]
                for name, pattern in self.patterns.items()
            }
        found: list[list[Span]] = [[] for _ in self.names]
        ends = [0] * len(self.names)  # where each list's last hit ended
        for match in self._combined.finditer(doc.lower):
            for i, span in enumerate(match.regs[1:]):
                if span[0] >= ends[i]:  # an unmatched group is (-1, -1)
                    found[i].append(span)
                    ends[i] = span[1]
        return dict(zip(self.names, found, strict=True))


def _combined(lists: Mapping[str, Collection[Any]]) -> re.Pattern[str]:
    """Zero-width at every word start where some list matches, with each list's match at
    that word start in a group of its own (unmatched when that list has none)."""
    groups = []
    for name, words in lists.items():
        body = alternation(words, True)
        if not body:
            raise LexiconError(f"cue list {name!r} has no forms")
        groups.append(f"(?:(?=({body}))|)")
    union = alternation([word for words in lists.values() for word in words], True)
    return re.compile(rf"(?<![\w'’])(?=(?:{union})){''.join(groups)}")
