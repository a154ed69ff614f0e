"""The terms of a fixed word list within one or two edits of a word.

A deletion index (SymSpell's idea): each term is filed under itself and every string made
by deleting up to `depth(term)` of its letters; a word within k edits of a term shares one
of those strings with its own k-deletions, so a look-up costs a few dozen probes and an
exact distance check per candidate, not a scan of the list. The index files 64-bit hashes
of the deletions in one sorted array rather than the strings in a dict: a 15,000-term
vocabulary makes half a million deletions, about 6 MB this way against 90 MB as a dict of
strings, and a hash collision only adds a candidate that the distance check then rejects.
Python salts string hashes per process, which is fine for an index that lives in one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from perturbation.edit_distance import distance


def deletions(word: str, depth: int) -> set[str]:
    """`word` with up to `depth` characters deleted (itself included)."""
    out = {word}
    frontier = {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        out |= frontier
    return out


class NearWords:
    """`within(word, k)` finds every term at most k edits away, provided `depth(term)` is at
    least the number of the term's own letters those k edits remove or replace."""

    def __init__(self, terms: Sequence[str], depth: Callable[[str], int]) -> None:
        self.terms = list(terms)
        keys: list[int] = []
        owners: list[int] = []
        for number, term in enumerate(self.terms):
            for variant in deletions(term, depth(term)):
                keys.append(hash(variant))
                owners.append(number)
        hashes = np.asarray(keys, dtype=np.int64)
        order = np.argsort(hashes, kind="stable")
        self._keys = hashes[order]
        self._owners = np.asarray(owners, dtype=np.int32)[order]

    def within(self, word: str, limit: int) -> list[tuple[int, str]]:
        """(distance, term) for each term at most `limit` edits from `word`."""
        found = self._candidates(deletions(word, limit))
        near = []
        for term in (self.terms[n] for n in found):
            if abs(len(term) - len(word)) <= limit and (d := distance(word, term)) <= limit:
                near.append((d, term))
        return near

    def _candidates(self, variants: Iterable[str]) -> set[int]:
        probes = np.fromiter((hash(v) for v in variants), dtype=np.int64)
        starts = np.searchsorted(self._keys, probes, side="left")
        ends = np.searchsorted(self._keys, probes, side="right")
        found: set[int] = set()
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            if end > start:
                found.update(self._owners[start:end].tolist())
        return found
