"""Query spelling correction against the index's own vocabulary.

Why: BM25 matches exact terms only, so a slip in a rare biomedical word that no intake
lexicon lists ("urticaaria", "peditaric") matches nothing, and the embedder cuts it into
word pieces that mean something else. The one word list sure to hold the word the writer
meant, if any guideline uses it, is the index's BM25 vocabulary, and its document
frequencies say which of two near terms is the likelier. It is built from the corpus, never
from queries, and rebuilt with every index load, so it follows an index swap.

A query word is a suspect only when BM25 would drop it: Latin letters (a hyphenated
compound counts as one word, as BM25 sees it), at least `MIN_LETTERS` long, and neither a
vocabulary term nor a regular inflection of one ("feeling" when the guidelines say "feel"
is a real word, not a slip of "feeding"). Numbers, short words, Chinese and known words
pass through untouched. Candidates are vocabulary terms one edit away, or two from
`LONG_WORD` letters, that begin with the same letter (slips rarely hit the first letter,
and this keeps "Spain" from becoming "pain"). The nearest win, then the most frequent; the
word is replaced only when the winner is clear (`DOMINANCE` times the runner-up's document
frequency at the same distance), because a coin-flip correction adds a wrong term where
keeping the slip adds none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from retrieval.near_words import NearWords
from retrieval.tokenize import tokens

MIN_LETTERS = 5  # shorter words have too many one-edit neighbours to choose between
LONG_WORD = 9  # from this length a word may carry two slips
DOMINANCE = 2.0  # the winner's document frequency over the runner-up's, same distance
_SUFFIXES = ("ing", "ed", "er", "est", "ly", "ness", "es", "d", "s")

_WORD = re.compile(r"[A-Za-z0-9]+(?:[-'][A-Za-z0-9]+)*")  # the tokenizer's Latin words
_LETTERS = re.compile(r"[a-z]+(?:-[a-z]+)*")


def max_edits(word: str) -> int:
    return 2 if len(word) >= LONG_WORD else 1


def _index_depth(term: str) -> int:
    """Deletions to file a term under: a long query word may be two edits from a term one
    letter shorter than LONG_WORD (two shorter and both edits are insertions)."""
    return 2 if len(term) >= LONG_WORD - 1 else 1


class QuerySpeller:
    """Corrects the words of a query against one index's vocabulary."""

    def __init__(self, document_frequency: Mapping[str, int]) -> None:
        self.document_frequency = dict(document_frequency)
        reachable = sorted(
            term
            for term in self.document_frequency
            if len(term) >= MIN_LETTERS - 1 and _LETTERS.fullmatch(term)
        )
        self._near = NearWords(reachable, _index_depth)

    def correct(self, query: str) -> str:
        """`query` with each suspect word that has a clear correction replaced by it."""
        return _WORD.sub(self._replacement, query)

    def suggestion(self, term: str) -> str | None:
        """The vocabulary term that `term` is a slip of, or None when none is clear."""
        ranked = sorted(
            (d, -self.document_frequency[candidate], candidate)
            for d, candidate in self._near.within(term, max_edits(term))
            if candidate[0] == term[0]
        )
        if not ranked:
            return None
        if len(ranked) > 1 and ranked[1][0] == ranked[0][0]:
            if -ranked[0][1] < DOMINANCE * -ranked[1][1]:
                return None
        return ranked[0][2]

    def _replacement(self, match: re.Match[str]) -> str:
        word = match.group()
        lower = word.lower()
        if len(lower) < MIN_LETTERS or not _LETTERS.fullmatch(lower):
            return word
        terms = tokens(lower)  # as BM25 reads it: "urticarias" -> "urticaria"
        if len(terms) != 1 or len(terms[0]) < MIN_LETTERS or self._known(terms[0]):
            return word
        fixed = self.suggestion(terms[0])
        if fixed is None:
            return word
        if word.isupper():
            return fixed.upper()
        return fixed[0].upper() + fixed[1:] if word[0].isupper() else fixed

    def _known(self, term: str) -> bool:
        """A vocabulary term, or a regular inflection of one."""
        if term in self.document_frequency:
            return True
        for suffix in _SUFFIXES:
            stem = term[: -len(suffix)]
            if not term.endswith(suffix) or len(stem) < 3:
                continue
            if stem in self.document_frequency or stem + "e" in self.document_frequency:
                return True
            if stem[-1] == stem[-2] and stem[:-1] in self.document_frequency:  # "stopping"
                return True
        return False
