"""evaluation.stats: Wilson intervals against known values, Newcombe's paired interval against
published worked examples, and the edge cases a robustness run meets (no change, total
collapse, tiny n)."""

from __future__ import annotations

import doctest
import random

import pytest

import evaluation.stats
from evaluation.stats import Drop, Proportion, paired_drop, wilson


def test_doctests_pass() -> None:
    result = doctest.testmod(evaluation.stats)
    assert result.failed == 0
    assert result.attempted >= 4


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (0, 10, 0.0, 0.2775),
        (5, 10, 0.2366, 0.7634),
        (10, 10, 0.7225, 1.0),
        (81, 263, 0.2553, 0.3662),  # Newcombe 1998, Stat Med 17:857, example 81/263
    ],
)
def test_wilson_known_values(k: int, n: int, low: float, high: float) -> None:
    assert wilson(k, n) == pytest.approx((low, high), abs=5e-5)


def test_wilson_edges_and_refusals() -> None:
    assert wilson(0, 0) == (0.0, 0.0)
    for k in range(0, 31):
        low, high = wilson(k, 30)
        assert 0.0 <= low <= k / 30 <= high <= 1.0
    assert wilson(5, 10, z=1.0)[1] - wilson(5, 10, z=1.0)[0] < 0.4  # narrower at lower z
    for k, n in ((-1, 10), (11, 10), (0, -1)):
        with pytest.raises(ValueError, match="0 <= k <= n"):
            wilson(k, n)


def test_proportion() -> None:
    half = Proportion(5, 10)
    assert half.accuracy == 0.5
    assert half.ci95 == pytest.approx((0.2366, 0.7634), abs=5e-5)
    assert Proportion(0, 0).accuracy == 0.0
    assert Proportion(0, 0).ci95 == (0.0, 0.0)
    with pytest.raises(ValueError):
        Proportion(3, 2)


def pairs(a: int, b: int, c: int, d: int) -> tuple[list[bool], list[bool]]:
    """Reference and variant results for a = both correct, b = reference only, c = variant
    only, d = neither, shuffled together so that order cannot matter."""
    rows = [(True, True)] * a + [(True, False)] * b + [(False, True)] * c + [(False, False)] * d
    random.Random(a * 1000 + b).shuffle(rows)
    return [ref for ref, _ in rows], [var for _, var in rows]


@pytest.mark.parametrize(
    ("table", "points", "low", "high"),
    [
        # Altman et al., Statistics with Confidence (2000), Table 6.2 worked example
        ((14, 5, 0, 22), 12.20, 1.15, 22.65),
        # Fagerland, Lydersen & Laake (2017), ch. 8, Cavo et al. (2012) table, as the book's
        # R package (contingencytables) tests it: -0.0621 (-0.1186 to -0.0046)
        ((59, 6, 16, 80), -6.21, -11.86, -0.46),
    ],
)
def test_newcombe_method_10_matches_published_examples(
    table: tuple[int, int, int, int], points: float, low: float, high: float
) -> None:
    drop = paired_drop(*pairs(*table))
    assert drop.n == sum(table)
    assert drop.points == pytest.approx(points, abs=0.01)
    assert drop.ci95 == pytest.approx((low, high), abs=0.01)


def test_the_phi_correction_depends_on_concordance() -> None:
    # Same discordant pairs (b=9, c=2), so the same point; the concordant pairs set phi.
    # 12,9,2,4: ad - bc = 30 > n/2, so phi = (30 - 13.5)/sqrt(21*6*14*13), computed by hand
    # from the documented formula (not a published value). 2,9,2,14: ad - bc = 10 <= n/2,
    # so phi = 0 and the interval is wider.
    first = paired_drop(*pairs(12, 9, 2, 4))
    assert first.points == pytest.approx(25.93, abs=0.01)
    assert first.ci95 == pytest.approx((1.92, 46.15), abs=0.01)
    other = paired_drop(*pairs(2, 9, 2, 14))
    assert other.points == pytest.approx(first.points)
    assert other.ci95[1] - other.ci95[0] > first.ci95[1] - first.ci95[0]


def test_identical_results_drop_nothing_with_an_interval_around_zero() -> None:
    for table in ((30, 0, 0, 10), (40, 0, 0, 0), (0, 0, 0, 40)):
        results = pairs(*table)[0]
        drop = paired_drop(results, list(results))
        assert drop.points == 0.0
        assert drop.ci95[0] < 0.0 < drop.ci95[1]


def test_total_collapse_drops_a_hundred_points_inside_the_range() -> None:
    drop = paired_drop([True] * 20, [False] * 20)
    assert drop.points == 100.0
    assert 0.0 < drop.ci95[0] < 100.0
    assert drop.ci95[1] == pytest.approx(100.0)
    rise = paired_drop([False] * 20, [True] * 20)
    assert rise.points == -100.0
    assert rise.ci95[0] == pytest.approx(-100.0)
    assert -100.0 < rise.ci95[1] < 0.0


def test_interval_contains_the_point_and_stays_in_range() -> None:
    rng = random.Random(0)
    for _ in range(300):
        n = rng.randint(1, 40)
        reference = [rng.random() < 0.7 for _ in range(n)]
        variant = [ok if rng.random() < 0.8 else not ok for ok in reference]
        drop = paired_drop(reference, variant)
        low, high = drop.ci95
        assert -100.0 <= low <= drop.points <= high <= 100.0


def test_paired_drop_needs_the_same_items() -> None:
    assert paired_drop([], []) == Drop(n=0, points=0.0, ci95=(0.0, 0.0))
    with pytest.raises(ValueError, match="same items"):
        paired_drop([True, False], [True])
