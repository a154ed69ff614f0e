"""Accuracy with 95% intervals, and the paired drop in accuracy between two conditions.

Why these intervals: benchmark subsets are often small (a few hundred items, a few dozen per
source) and accuracies sit near 0 or 1 for easy or broken setups, where the textbook
p ± 1.96·SE interval collapses to zero width or leaves [0, 1]. Wilson's score interval stays
inside [0, 1] and keeps close to its nominal coverage there. A robustness drop compares the
SAME items clean and perturbed, so the two accuracies are correlated; treating them as
independent would overstate the uncertainty. Newcombe's method 10 combines the two Wilson
intervals with the observed correlation and is the usual interval for paired proportions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959964


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials; (0.0, 0.0) when n == 0.

        centre = (p + z²/2n) / (1 + z²/n)
        half   = z / (1 + z²/n) · sqrt(p(1 − p)/n + z²/4n²)

    >>> [round(bound, 4) for bound in wilson(0, 10)]
    [0.0, 0.2775]
    >>> [round(bound, 4) for bound in wilson(5, 10)]
    [0.2366, 0.7634]
    """
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"wilson: need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return (0.0, 0.0)
    p = k / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Proportion:
    """k correct out of n, with its accuracy and Wilson 95% interval."""

    k: int
    n: int

    def __post_init__(self) -> None:
        if self.n < 0 or not 0 <= self.k <= self.n:
            raise ValueError(f"Proportion: need 0 <= k <= n, got k={self.k}, n={self.n}")

    @property
    def accuracy(self) -> float:
        return self.k / self.n if self.n else 0.0

    @property
    def ci95(self) -> tuple[float, float]:
        return wilson(self.k, self.n)


@dataclass(frozen=True)
class Drop:
    """How far accuracy fell from a reference condition, in percentage points (positive =
    worse than the reference), with its 95% interval, over n paired items."""

    n: int
    points: float
    ci95: tuple[float, float]


def paired_drop(reference: Sequence[bool], variant: Sequence[bool]) -> Drop:
    """The drop from `reference` to `variant` accuracy over the same items in the same order,
    with Newcombe's (1998) method 10 interval for a difference of paired proportions.

    With a = both correct, b = reference only, c = variant only, d = neither (n items):

        p1 = (a + b)/n, p2 = (a + c)/n, θ = p1 − p2      (l1, u1), (l2, u2): Wilson intervals
        φ  = C / sqrt((a+b)(c+d)(a+c)(b+d)),  where with D = ad − bc:
             C = D − n/2 if D > n/2;  C = 0 if 0 ≤ D ≤ n/2;  C = D if D < 0
             (φ = 0 when any of the four margins is 0)
        lower = θ − sqrt((p1 − l1)² − 2φ(p1 − l1)(u2 − p2) + (u2 − p2)²)
        upper = θ + sqrt((u1 − p1)² − 2φ(u1 − p1)(p2 − l2) + (p2 − l2)²)

    and points = 100·θ. Worked example of Altman et al., Statistics with Confidence (2000),
    Table 6.2: a=14, b=5, c=0, d=22 gives θ = 0.122, 95% CI 0.011 to 0.226.

    >>> drop = paired_drop([True] * 19 + [False] * 22, [True] * 14 + [False] * 27)
    >>> round(drop.points, 1), [round(bound, 1) for bound in drop.ci95]
    (12.2, [1.1, 22.6])
    """
    if len(reference) != len(variant):
        raise ValueError(
            f"paired_drop: {len(reference)} reference and {len(variant)} variant results; "
            "the same items are needed in both"
        )
    n = len(reference)
    if n == 0:
        return Drop(n=0, points=0.0, ci95=(0.0, 0.0))
    pairs = list(zip(reference, variant, strict=True))
    a = sum(1 for ref, var in pairs if ref and var)
    b = sum(1 for ref, var in pairs if ref and not var)
    c = sum(1 for ref, var in pairs if var and not ref)
    d = n - a - b - c
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson(a + b, n)
    l2, u2 = wilson(a + c, n)
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    phi = 0.0
    if margins:
        excess = a * d - b * c
        corrected = excess - n / 2 if excess > n / 2 else (excess if excess < 0 else 0.0)
        phi = corrected / math.sqrt(margins)
    theta = p1 - p2
    below = (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    above = (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2
    lower = max(-1.0, theta - math.sqrt(max(0.0, below)))
    upper = min(1.0, theta + math.sqrt(max(0.0, above)))
    return Drop(n=n, points=100 * theta, ci95=(100 * lower, 100 * upper))
