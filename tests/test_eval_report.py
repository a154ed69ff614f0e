"""evaluation.report: the Markdown built from MCQ and robustness results dicts shows the
run's settings, formats the numbers, warns about failed requests and says plainly when a
drop cannot be told apart from zero."""

from __future__ import annotations

from evaluation.report import mcq_markdown, robustness_markdown
from tests.eval_results import mcq_results, robustness_results


def _section(markdown: str, title: str) -> str:
    """The text of one `## title` section, up to the next heading."""
    return markdown.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_mcq_header_says_how_the_run_was_made() -> None:
    markdown = mcq_markdown(mcq_results())
    assert markdown.startswith("# MCQ evaluation: qwen2.5-0.5b-instruct\n")
    for row in [
        "| Model | `qwen2.5-0.5b-instruct` |",
        "| Endpoint | http://127.0.0.1:8000/v1 |",
        "| Datasets | /work/shared/data/benchmarks/medqa.jsonl, "
        "/work/shared/data/benchmarks/jmed.jsonl |",
        "| Items | 300 |",
        "| Seed | 7 |",
        "| Limit | 300 |",
        "| Option shuffle | on |",
        "| Scoring | generate |",
        "| Date | 2025-12-05T16:23:04+00:00 (12 min 42 s) |",
        "| Command | `clinserve eval mcq medqa.jsonl jmed.jsonl --limit 300 --seed 7 "
        "--out runs/a` |",
    ]:
        assert row in markdown


def test_mcq_accuracy_table_overall_first_then_sources() -> None:
    table = _section(mcq_markdown(mcq_results()), "Accuracy")
    lines = [line for line in table.splitlines() if line.startswith("|")]
    assert lines == [
        "| Source | n | Accuracy (%) | 95% CI | Invalid | Errors |",
        "|---|---|---|---|---|---|",
        "| **overall** | 300 | 57.0 | 51.3-62.5 | 2.3% | 3 |",
        "| jmed | 100 | 48.0 | 38.5-57.7 | 3.0% | 3 |",
        "| medqa | 200 | 61.5 | 54.6-68.0 | 2.0% | 0 |",
    ]


def test_mcq_answer_distribution_names_the_most_chosen_letter() -> None:
    section = _section(mcq_markdown(mcq_results()), "Answer letters")
    assert "| A | 81 | 27.3% |" in section
    assert "| E | 12 | 4.0% |" in section
    assert section.index("| E |") < section.index("| invalid | 7 | 2.4% |")
    assert "Most chosen: A (27.3% of answers; an even spread over 5 answers would give 20.0%" in (
        section
    )


def test_mcq_answer_distribution_orders_multi_answers_after_single_letters() -> None:
    results = mcq_results()
    results["answer_distribution"] = {"A,C": 5, "B": 3, "A": 2}
    section = _section(mcq_markdown(results), "Answer letters")
    assert section.index("| A |") < section.index("| B |") < section.index("| A,C |")
    assert "Most chosen: A,C (50.0% of answers" in section


def test_mcq_caveat_only_when_requests_failed() -> None:
    assert "**Caveat:** 3 of 300 requests failed after retries; they count as wrong answers." in (
        mcq_markdown(mcq_results())
    )
    results = mcq_results()
    results["errors"] = 0
    assert "Caveat" not in mcq_markdown(results)


def test_mcq_header_options_that_vary() -> None:
    results = mcq_results()
    results.update(
        limit=None,
        shuffle=False,
        scoring="logprobs",
        clinical={"intake": "normalize"},
        base_url="https://user:secret@gateway.example:8443/v1",
        duration_s=3725.0,
        command="clinserve eval mcq a.jsonl | tee `log`",
    )
    markdown = mcq_markdown(results)
    assert "| Limit | all items |" in markdown
    assert "| Option shuffle | off |" in markdown
    assert "| Scoring | logprobs |" in markdown
    assert '| Clinical options | `{"intake": "normalize"}` |' in markdown
    assert "| Endpoint | https://gateway.example:8443/v1 |" in markdown
    assert "secret" not in markdown
    assert "(1 h 02 min)" in markdown
    assert "| Command | `` clinserve eval mcq a.jsonl \\| tee `log` `` |" in markdown


def test_mcq_without_answers() -> None:
    results = mcq_results()
    results["answer_distribution"] = {}
    assert "No answers were recorded." in mcq_markdown(results)


def test_robustness_accuracy_table_rows_variants_columns_modes() -> None:
    table = _section(robustness_markdown(robustness_results()), "Accuracy (%, 95% CI)")
    lines = [line for line in table.splitlines() if line.startswith("|")]
    assert lines[0] == "| Variant | n | intake off | intake annotate | intake normalize |"
    assert lines[2] == "| clean | 200 | 41.5 (34.9-48.4) | 45.0 (38.3-51.9) | 47.5 (40.7-54.4) |"
    assert lines[5] == "| heavy | 200 | 29.5 (23.6-36.2) | 40.0 (33.5-46.9) | 44.5 (37.8-51.4) |"
    assert lines[6] == "| dialogue | 60 | 31.7 (21.3-44.2) | 36.7 (25.6-49.3) | 50.0 (37.7-62.3) |"
    assert len(lines) == 7


def test_robustness_drop_table_signed_points_with_intervals() -> None:
    markdown = robustness_markdown(robustness_results())
    table = _section(markdown, "Drop in accuracy (points, 95% CI; positive = worse)")
    assert (
        "| light vs clean (n=200) | +1.5 (-2.0 to 5.0) | +1.0 (-2.1 to 4.1) | -0.5 (-3.6 to 2.6) |"
        in table
    )
    assert (
        "| heavy vs clean (n=200) | +12.0 (6.1 to 17.8) | +5.0 (0.9 to 9.1) | +3.0 (-1.2 to 7.4) |"
        in table
    )
    assert "| dialogue vs clean (n=60) | +20.0 (8.3 to 31.0) |" in table
    assert "| clean vs" not in table


def test_robustness_reading_says_when_a_drop_is_not_distinguishable_from_zero() -> None:
    reading = _section(robustness_markdown(robustness_results()), "Reading")
    assert "- intake off: heavy perturbation costs 12.0 points (95% CI 6.1 to 17.8).\n" in reading
    assert (
        "- intake annotate: heavy perturbation costs 5.0 points (95% CI 0.9 to 9.1).\n" in reading
    )
    assert (
        "- intake normalize: heavy perturbation costs 3.0 points (95% CI -1.2 to 7.4); "
        "not distinguishable from 0.\n" in reading
    )
    assert (
        "- intake annotate: the patient's own dialogue instead of the clinician summary "
        "raises accuracy by 1.7 points (drop 95% CI -13.4 to 10.1); not distinguishable from 0."
        in reading
    )
    assert reading.count("not distinguishable from 0") == 3  # normalize heavy, two dialogues
    assert "light" not in reading


def test_robustness_interval_touching_zero_counts_as_not_distinguishable() -> None:
    results = robustness_results()
    for drop in results["drops"]:
        if drop["variant"] == "heavy" and drop["mode"] == "off":
            drop["ci95"] = [0.0, 9.0]
    reading = _section(robustness_markdown(results), "Reading")
    assert "- intake off: heavy perturbation costs 12.0 points (95% CI 0.0 to 9.0); not" in reading


def test_robustness_invalid_rates_and_caveat() -> None:
    markdown = robustness_markdown(robustness_results())
    invalid = _section(markdown, "Invalid answers (%)")
    assert "| heavy | 4.5 | 2.0 | 1.0 |" in invalid
    assert (
        "**Caveat:** 2 requests failed after retries (off/heavy: 2); they count as wrong answers."
        in markdown
    )


def test_robustness_modes_in_fixed_order_and_missing_conditions_dashed() -> None:
    results = robustness_results()
    results["modes"] = ["normalize", "off"]
    results["variants"] = ["clean", "heavy"]
    results["conditions"] = [
        c
        for c in results["conditions"]
        if c["variant"] in {"clean", "heavy"}
        and (c["mode"], c["variant"]) != ("normalize", "heavy")
    ]
    results["drops"] = [
        d for d in results["drops"] if (d["mode"], d["variant"]) == ("off", "heavy")
    ]
    for condition in results["conditions"]:
        condition["errors"] = 0
    markdown = robustness_markdown(results)
    accuracy = _section(markdown, "Accuracy (%, 95% CI)")
    assert "| Variant | n | intake off | intake normalize |" in accuracy
    assert "| heavy | 200 | 29.5 (23.6-36.2) | – |" in accuracy
    assert "| heavy vs clean (n=200) | +12.0 (6.1 to 17.8) | – |" in markdown
    assert "intake normalize: heavy" not in markdown
    assert "dialogue" not in markdown
    assert "Caveat" not in markdown


def test_robustness_without_drops_has_no_drop_or_reading_section() -> None:
    results = robustness_results()
    results["variants"] = ["clean"]
    results["conditions"] = [c for c in results["conditions"] if c["variant"] == "clean"]
    results["drops"] = []
    markdown = robustness_markdown(results)
    assert "## Drop in accuracy" not in markdown
    assert "## Reading" not in markdown
    assert "| clean | 200 | 41.5 (34.9-48.4) |" in markdown
