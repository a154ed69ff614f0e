"""PNG plots from the results dicts that `evaluation.mcq` and `evaluation.robustness` write.

matplotlib is imported inside the functions, never at module import: `clinserve eval --help`
imports this package and must stay fast, and matplotlib is an optional extra (`eval`).
Figures are built on the Agg canvas directly rather than through pyplot, so drawing keeps
no global state and needs no display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MODE_ORDER = ("off", "annotate", "normalize")
DPI = 120


def plot_mcq(results: Mapping[str, Any], path: Path) -> None:
    """Accuracy per source with 95% CI error bars, the overall bar on top, saved as PNG."""
    _save(mcq_figure(results), path)


def plot_robustness(results: Mapping[str, Any], path: Path) -> None:
    """Accuracy per variant, one bar per intake mode, with 95% CI error bars, saved as PNG."""
    _save(robustness_figure(results), path)


def mcq_figure(results: Mapping[str, Any]) -> Figure:
    """Horizontal bars, since a full run has a dozen sources whose names would collide as
    x tick labels. Bars top to bottom: overall, then the sources by name."""
    sources = sorted(results["by_source"])
    rows = [results] + [results["by_source"][source] for source in sources]
    labels = [f"{name} (n={r['n']})" for name, r in zip(["overall", *sources], rows, strict=True)]
    accuracies = [100 * float(r["accuracy"]) for r in rows]
    errors = _error_bars(accuracies, [r["ci95"] for r in rows])

    figure = _figure(width=5.0 + 0.08 * max(map(len, labels)), height=1.6 + 0.4 * len(rows))
    axes = figure.add_subplot()
    positions = list(range(len(rows)))
    colors = ["tab:gray"] + ["tab:blue"] * (len(rows) - 1)
    axes.barh(positions, accuracies, xerr=errors, color=colors, capsize=3)
    axes.set_yticks(positions, labels)
    axes.invert_yaxis()
    axes.set_xlim(0, 100)
    axes.set_xlabel("accuracy (%), 95% CI")
    shuffle = "shuffled options" if results["shuffle"] else "options as given"
    figure.suptitle(f"{results['model']}: MCQ accuracy\n{results['scoring']}, {shuffle}")
    for position, accuracy, above in zip(positions, accuracies, errors[1], strict=True):
        axes.text(min(accuracy + above + 1, 92), position, f"{accuracy:.1f}", va="center")
    return figure


def robustness_figure(results: Mapping[str, Any]) -> Figure:
    """Grouped bars rather than lines: the variants are categories, and the dialogue
    variant is a different subset of items, so a line through it would suggest a trend."""
    modes = [m for m in MODE_ORDER if m in results["modes"]]
    modes += [m for m in results["modes"] if m not in MODE_ORDER]
    variants = list(results["variants"])
    conditions = {(c["mode"], c["variant"]): c for c in results["conditions"]}

    figure = _figure(width=max(7.0, 1.4 * len(variants) + 3), height=4.5)
    axes = figure.add_subplot()
    width = 0.8 / max(len(modes), 1)
    for index, mode in enumerate(modes):
        present = [
            (i, conditions[(mode, v)]) for i, v in enumerate(variants) if (mode, v) in conditions
        ]
        if not present:
            continue
        positions = [i - 0.4 + width * (index + 0.5) for i, _ in present]
        accuracies = [100 * float(c["accuracy"]) for _, c in present]
        errors = _error_bars(accuracies, [c["ci95"] for _, c in present])
        axes.bar(positions, accuracies, width, yerr=errors, capsize=3, label=f"intake {mode}")
    axes.set_xticks(range(len(variants)), [_variant_label(conditions, v) for v in variants])
    axes.set_ylim(0, 100)
    axes.set_ylabel("accuracy (%), 95% CI")
    figure.suptitle(f"{results['model']}: accuracy under perturbation")
    figure.legend(loc="outside right upper")
    return figure


def _variant_label(conditions: Mapping[tuple[str, str], Mapping[str, Any]], variant: str) -> str:
    counts = sorted({int(c["n"]) for (_, v), c in conditions.items() if v == variant})
    return f"{variant}\n(n={'/'.join(str(n) for n in counts)})" if counts else variant


def _error_bars(
    accuracies: Sequence[float], intervals: Sequence[Sequence[float]]
) -> list[list[float]]:
    """matplotlib's asymmetric error bars: distances below and above each bar, in percent.
    Clamped at 0 so a rounding quirk in an interval cannot draw a bar the wrong way."""
    below = [max(0.0, a - 100 * float(ci[0])) for a, ci in zip(accuracies, intervals, strict=True)]
    above = [max(0.0, 100 * float(ci[1]) - a) for a, ci in zip(accuracies, intervals, strict=True)]
    return [below, above]


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
