"""Markdown reports from the results dicts that `evaluation.mcq` and `evaluation.robustness`
write to results.json.

The reports read only those plain dicts (never the run's objects), so a report can be
rebuilt later from a results.json alone, on a machine without the endpoint. Accuracies in
the dicts are fractions 0..1 and drops are percentage points; everything shown here is in
percent or points with one decimal, which is as much precision as a few hundred items carry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MODE_ORDER = ("off", "annotate", "normalize")
DASH = "–"


def mcq_markdown(results: Mapping[str, Any]) -> str:
    """The MCQ run as Markdown: how it was run, accuracy overall and per source, and the
    answer-letter distribution, which shows a model that leans on one letter."""
    lines = [f"# MCQ evaluation: {results['model']}", ""]
    lines += _run_header(results, [("Items", str(results["n"]))])
    lines += ["", "## Accuracy", ""]
    rows = [_mcq_row("**overall**", results)]
    rows += [_mcq_row(source, row) for source, row in sorted(results["by_source"].items())]
    lines += _table(["Source", "n", "Accuracy (%)", "95% CI", "Invalid", "Errors"], rows)
    lines += ["", "## Answer letters", ""]
    lines += _answer_distribution(results["answer_distribution"])
    errors = int(results["errors"])
    if errors > 0:
        lines += [
            "",
            f"**Caveat:** {errors} of {results['n']} requests failed after retries; "
            "they count as wrong answers.",
        ]
    return "\n".join(lines) + "\n"


def robustness_markdown(results: Mapping[str, Any]) -> str:
    """The robustness run as Markdown: accuracy per variant and intake mode, the drop
    against the clean text, and one plain sentence per mode on the heavy perturbation."""
    modes = _ordered_modes(results["modes"])
    variants = list(results["variants"])
    conditions = {(c["mode"], c["variant"]): c for c in results["conditions"]}
    drops = {(d["mode"], d["variant"]): d for d in results["drops"]}

    lines = [f"# Robustness evaluation: {results['model']}", ""]
    lines += _run_header(results, [("Items", str(results["n_items"]))])

    lines += ["", "## Accuracy (%, 95% CI)", ""]
    header = ["Variant", "n"] + [f"intake {mode}" for mode in modes]
    rows = [
        [variant, _condition_n(conditions, modes, variant)]
        + [_accuracy_cell(conditions.get((mode, variant))) for mode in modes]
        for variant in variants
    ]
    lines += _table(header, rows)

    drop_variants = [v for v in variants if any((m, v) in drops for m in modes)]
    if drop_variants:
        lines += ["", "## Drop in accuracy (points, 95% CI; positive = worse)", ""]
        rows = [
            [_drop_label(drops, modes, variant)]
            + [_drop_cell(drops.get((mode, variant))) for mode in modes]
            for variant in drop_variants
        ]
        lines += _table(["Variant"] + [f"intake {mode}" for mode in modes], rows)

    lines += ["", "## Invalid answers (%)", ""]
    rows = [
        [variant] + [_invalid_cell(conditions.get((mode, variant))) for mode in modes]
        for variant in variants
    ]
    lines += _table(["Variant"] + [f"intake {mode}" for mode in modes], rows)

    reading = _reading(drops, modes)
    if reading:
        lines += ["", "## Reading", ""] + reading

    failed = [(c["mode"], c["variant"], int(c["errors"])) for c in results["conditions"]]
    failed = [f for f in failed if f[2] > 0]
    if failed:
        where = ", ".join(f"{mode}/{variant}: {count}" for mode, variant, count in failed)
        total = sum(count for _, _, count in failed)
        lines += [
            "",
            f"**Caveat:** {total} requests failed after retries ({where}); "
            "they count as wrong answers.",
        ]
    return "\n".join(lines) + "\n"


def _run_header(results: Mapping[str, Any], extra: list[tuple[str, str]]) -> list[str]:
    """How the run was made, enough to repeat it: endpoint, data, sampling and command."""
    limit = results["limit"]
    rows = [
        ("Model", _code(str(results["model"]))),
        ("Endpoint", _safe_url(str(results["base_url"]))),
        ("Datasets", ", ".join(_escape(str(d)) for d in results["datasets"])),
        *extra,
        ("Seed", str(results["seed"])),
        ("Limit", "all items" if limit is None else str(limit)),
        ("Option shuffle", "on" if results["shuffle"] else "off"),
        ("Scoring", str(results["scoring"])),
    ]
    clinical = results.get("clinical")
    if clinical:
        rows.append(("Clinical options", _code(json.dumps(clinical, sort_keys=True))))
    rows += [
        ("Date", f"{results['started_at']} ({_duration(float(results['duration_s']))})"),
        ("Command", _code(str(results["command"]))),
    ]
    return _table(["Run", ""], [[name, value] for name, value in rows])


def _mcq_row(label: str, row: Mapping[str, Any]) -> list[str]:
    low, high = row["ci95"]
    return [
        _escape(label),
        str(row["n"]),
        _percent(row["accuracy"]),
        f"{_percent(low)}-{_percent(high)}",
        f"{_percent(row['invalid_rate'])}%",
        str(row["errors"]),
    ]


def _answer_distribution(counts: Mapping[str, int]) -> list[str]:
    """Count and share of each answer the model gave, with the most chosen letter named:
    with shuffled options the correct letters are close to uniform, so a large excess on
    one letter is a position bias, not knowledge."""
    total = sum(counts.values())
    if total == 0:
        return ["No answers were recorded."]
    keys = sorted((k for k in counts if k != "invalid"), key=lambda k: (len(k), k))
    if "invalid" in counts:
        keys.append("invalid")
    rows = [[_escape(k), str(counts[k]), f"{_percent(counts[k] / total)}%"] for k in keys]
    lines = _table(["Answer", "Count", "Share"], rows)
    letters = {k: v for k, v in counts.items() if k != "invalid"}
    if letters:
        top = max(sorted(letters), key=letters.__getitem__)
        lines += [
            "",
            f"Most chosen: {top} ({_percent(letters[top] / total)}% of answers; "
            f"an even spread over {len(letters)} answers would give "
            f"{_percent(1 / len(letters))}% each).",
        ]
    return lines


def _ordered_modes(modes: Sequence[str]) -> list[str]:
    """The intake modes in off → annotate → normalize order, whatever order the run used,
    so columns read from no help to the most help."""
    known = [m for m in MODE_ORDER if m in modes]
    return known + [m for m in modes if m not in MODE_ORDER]


def _condition_n(
    conditions: Mapping[tuple[str, str], Mapping[str, Any]], modes: Sequence[str], variant: str
) -> str:
    """Items per variant; the modes share them, so several values mean a broken run."""
    counts = sorted(
        {int(conditions[(m, variant)]["n"]) for m in modes if (m, variant) in conditions}
    )
    return "/".join(str(n) for n in counts) if counts else DASH


def _accuracy_cell(condition: Mapping[str, Any] | None) -> str:
    if condition is None:
        return DASH
    low, high = condition["ci95"]
    return f"{_percent(condition['accuracy'])} ({_percent(low)}-{_percent(high)})"


def _invalid_cell(condition: Mapping[str, Any] | None) -> str:
    return DASH if condition is None else _percent(condition["invalid_rate"])


def _drop_label(
    drops: Mapping[tuple[str, str], Mapping[str, Any]], modes: Sequence[str], variant: str
) -> str:
    against = next(drops[(m, variant)]["against"] for m in modes if (m, variant) in drops)
    n = next(drops[(m, variant)]["n"] for m in modes if (m, variant) in drops)
    return f"{variant} vs {against} (n={n})"


def _drop_cell(drop: Mapping[str, Any] | None) -> str:
    if drop is None:
        return DASH
    low, high = drop["ci95"]
    return f"{drop['points']:+.1f} ({low:.1f} to {high:.1f})"


def _reading(drops: Mapping[tuple[str, str], Mapping[str, Any]], modes: Sequence[str]) -> list[str]:
    """One sentence per mode for the heavy perturbation (and for the patient's own dialogue
    when the run had it), saying plainly whether the cost can be told apart from zero."""
    subjects = [
        ("heavy", "heavy perturbation"),
        ("dialogue", "the patient's own dialogue instead of the clinician summary"),
    ]
    lines = []
    for variant, subject in subjects:
        for mode in modes:
            drop = drops.get((mode, variant))
            if drop is not None:
                lines.append(f"- intake {mode}: {_drop_sentence(subject, drop)}")
    return lines


def _drop_sentence(subject: str, drop: Mapping[str, Any]) -> str:
    points = float(drop["points"])
    low, high = (float(x) for x in drop["ci95"])
    interval = f"95% CI {low:.1f} to {high:.1f}"
    if points >= 0:
        sentence = f"{subject} costs {points:.1f} points ({interval})"
    else:
        sentence = f"{subject} raises accuracy by {-points:.1f} points (drop {interval})"
    if low <= 0 <= high:
        return sentence + "; not distinguishable from 0."
    return sentence + "."


def _percent(fraction: float) -> str:
    return f"{100 * float(fraction):.1f}"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _safe_url(url: str) -> str:
    """The endpoint without any user:password@ part, since reports get shared."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _code(text: str) -> str:
    """Inline code that survives backticks and pipes inside the text."""
    if "`" in text:
        return _escape(f"`` {text} ``")
    return _escape(f"`{text}`")


def _escape(cell: str) -> str:
    return cell.replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]
