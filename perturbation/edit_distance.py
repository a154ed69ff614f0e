"""Edit distance between words, shared by the intake's spelling correction and the
retrieval query's spelling correction, which must agree on what one slip is."""

from __future__ import annotations


def distance(a: str, b: str) -> int:
    """Optimal string alignment distance: Levenshtein plus swaps of adjacent letters, the
    edits a slip of the keyboard makes. A shared beginning and ending are cut first (they
    do not change the distance), leaving a slip's few letters for the quadratic part.

    >>> distance("feaver", "fever"), distance("stomahc", "stomach"), distance("athsma", "asthma")
    (1, 1, 2)
    """
    shortest = min(len(a), len(b))
    start = 0
    while start < shortest and a[start] == b[start]:
        start += 1
    end = 0
    while end < shortest - start and a[-1 - end] == b[-1 - end]:
        end += 1
    a, b = a[start : len(a) - end], b[start : len(b) - end]
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], before[j - 2] + 1)
        before, previous = previous, current
    return previous[-1]
