"""evaluation.plots: real PNGs that matplotlib reads back, figures that carry the results'
numbers, and a module that does not import matplotlib until a plot is asked for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest
from matplotlib.container import BarContainer, ErrorbarContainer

from evaluation.plots import mcq_figure, plot_mcq, plot_robustness, robustness_figure
from tests.eval_results import mcq_results, robustness_results

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REPO = Path(__file__).resolve().parents[1]


def _assert_png_with_content(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    height, width, channels = image.shape
    assert height > 200 and width > 400 and channels in (3, 4)
    assert image[..., :3].std() > 0.05  # something was drawn, not a blank canvas


def test_plot_mcq_writes_a_png_matplotlib_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "plots" / "mcq.png"
    plot_mcq(mcq_results(), path)
    _assert_png_with_content(path)


def test_plot_robustness_writes_a_png_matplotlib_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "robustness.png"
    plot_robustness(robustness_results(), path)
    _assert_png_with_content(path)


def test_mcq_figure_bars_are_accuracies_with_interval_whiskers() -> None:
    figure = mcq_figure(mcq_results())
    axes = figure.axes[0]
    bars = next(c for c in axes.containers if isinstance(c, BarContainer))
    assert [round(bar.get_width(), 1) for bar in bars] == [57.0, 48.0, 61.5]
    labels = [label.get_text() for label in axes.get_yticklabels()]
    assert labels == ["overall (n=300)", "jmed (n=100)", "medqa (n=200)"]
    whiskers = bars.errorbar
    assert isinstance(whiskers, ErrorbarContainer)
    segments = whiskers.lines[2][0].get_segments()
    assert [(round(s[0][0], 2), round(s[1][0], 2)) for s in segments] == [
        (51.34, 62.48),
        (38.46, 57.68),
        (54.6, 67.97),
    ]
    assert figure.get_suptitle() == (
        "qwen2.5-0.5b-instruct: MCQ accuracy\ngenerate, shuffled options"
    )


def test_robustness_figure_one_bar_group_per_mode() -> None:
    figure = robustness_figure(robustness_results())
    axes = figure.axes[0]
    groups = [c for c in axes.containers if isinstance(c, BarContainer)]
    assert [group.get_label() for group in groups] == [
        "intake off",
        "intake annotate",
        "intake normalize",
    ]
    heights = [[round(bar.get_height(), 1) for bar in group] for group in groups]
    assert heights == [
        [41.5, 40.0, 38.0, 29.5, 31.7],
        [45.0, 44.0, 43.5, 40.0, 36.7],
        [47.5, 48.0, 46.5, 44.5, 50.0],
    ]
    labels = [label.get_text() for label in axes.get_xticklabels()]
    assert labels[0] == "clean\n(n=200)" and labels[-1] == "dialogue\n(n=60)"
    [legend] = figure.legends
    assert [text.get_text() for text in legend.get_texts()] == [
        "intake off",
        "intake annotate",
        "intake normalize",
    ]
    whiskers = groups[0].errorbar
    assert isinstance(whiskers, ErrorbarContainer)
    low, high = whiskers.lines[2][0].get_segments()[3][:, 1]
    assert (round(low, 2), round(high, 2)) == (23.61, 36.16)


def test_robustness_figure_skips_missing_conditions() -> None:
    results = robustness_results()
    results["conditions"] = [
        c for c in results["conditions"] if (c["mode"], c["variant"]) != ("annotate", "dialogue")
    ]
    groups = [
        c for c in robustness_figure(results).axes[0].containers if isinstance(c, BarContainer)
    ]
    assert [len(group) for group in groups] == [5, 4, 5]


def test_importing_plots_does_not_import_matplotlib() -> None:
    code = "import sys, evaluation.plots; print('matplotlib' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("sources", [1, 12])
def test_mcq_figure_scales_with_the_number_of_sources(tmp_path: Path, sources: int) -> None:
    results = mcq_results()
    row = results["by_source"]["medqa"]
    results["by_source"] = {f"mmlu_subject_{i:02d}": dict(row) for i in range(sources)}
    path = tmp_path / "mcq.png"
    plot_mcq(results, path)
    _assert_png_with_content(path)
