"""Intake quality and speed on the team's labelled dev set, plus a synthesizer round trip.

    python -m benchmarks.intake [--check]

Quality is scored per message: a subcategory counts as found when the engine reports it
anywhere in the message (the dev set labels which perturbations a message contains, with
evidence spans, not every token). Red flags are scored the same way. The dev set is split
by the number ending each id: odd ids are the tuning split (error analysis and lexicon
work may look at them), even ids are held out (only aggregate scores are ever looked at);
the held-out split is the headline. Latency is measured
on 2,000-character messages assembled from the dev set, per language, after a warm-up.
Targets (issue 3): micro-F1 >= 0.80; red-flag recall >= 0.95 at precision >= 0.80;
p95 <= 5 ms per 2,000-character message with the rules engine.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.markdown import publish, table
from perturbation.engine import RulesEngine
from perturbation.taxonomy import TAXONOMY

DEV_SET = Path(__file__).resolve().parents[1] / "tests" / "data" / "intake_dev.jsonl"
TARGETS = {"micro_f1": 0.80, "red_flag_recall": 0.95, "red_flag_precision": 0.80, "p95_ms": 5.0}


def load_dev_set(path: Path = DEV_SET) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def is_held_out(item: dict[str, Any]) -> bool:
    return int(item["id"].rsplit("-", 1)[-1]) % 2 == 0


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def score(engine: RulesEngine, items: list[dict[str, Any]]) -> dict[str, Any]:
    counts: dict[str, Counter[str]] = {sub.id: Counter() for sub in TAXONOMY}
    flags: Counter[str] = Counter()
    negation = Counter[str]()
    for item in items:
        result = engine.analyze(item["text"], item["language"])
        found = {finding.subcategory for finding in result.perturbations}
        gold = set(item["perturbations"])
        for sub in counts:
            key = ("tp" if sub in gold else "fp") if sub in found else ("fn" if sub in gold else "")
            if key:
                counts[sub][key] += 1
        flagged = {flag.id for flag in result.red_flags}
        gold_flags = set(item.get("red_flags", []))
        flags["tp"] += len(flagged & gold_flags)
        flags["fp"] += len(flagged - gold_flags)
        flags["fn"] += len(gold_flags - flagged)
        symptoms = {s.term: s.negated for s in result.chief_complaint.symptoms}
        for term in item.get("negated_symptoms", []):
            negation["denied"] += 1
            negation["kept_negative"] += symptoms.get(term) is not False
            negation["flipped"] += symptoms.get(term) is False
    per_sub = {
        sub: dict(zip(("precision", "recall", "f1"), prf(c["tp"], c["fp"], c["fn"]), strict=True))
        | {"support": c["tp"] + c["fn"]}
        for sub, c in counts.items()
    }
    total = Counter[str]()
    for c in counts.values():
        total.update(c)
    micro = prf(total["tp"], total["fp"], total["fn"])
    flag_p, flag_r, _ = prf(flags["tp"], flags["fp"], flags["fn"])
    return {
        "messages": len(items),
        "per_subcategory": per_sub,
        "micro": dict(zip(("precision", "recall", "f1"), micro, strict=True)),
        "red_flags": {"precision": flag_p, "recall": flag_r, **flags},
        "negations": dict(negation),
    }


def latency(engine: RulesEngine, items: list[dict[str, Any]], repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for language in ("en", "zh"):
        texts = [item["text"] for item in items if item["language"] == language]
        message, i = "", 0
        while len(message) < 2000:
            message += texts[i % len(texts)] + " "
            i += 1
        message = message[:2000]
        engine.analyze(message, language)  # warm caches
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            engine.analyze(message, language)
            samples.append((time.perf_counter() - start) * 1000)
        samples.sort()
        out[language] = {
            "p50_ms": statistics.median(samples),
            "p95_ms": samples[int(0.95 * (len(samples) - 1))],
            "max_ms": samples[-1],
        }
    return out


def round_trip(engine: RulesEngine, items: list[dict[str, Any]], seeds: int) -> dict[str, Any]:
    """Clean messages -> synthesizer -> engine: labels recovered, key terms and negations kept."""
    from perturbation.synthesizer import synthesize

    clean = [item for item in items if not item["perturbations"]]
    applied = recovered = key_total = key_kept = neg_total = neg_kept = 0
    for item in clean:
        for seed in range(seeds):
            synth = synthesize(item["text"], severity="moderate", seed=seed)
            result = engine.analyze(synth.text, item["language"])
            found = {finding.subcategory for finding in result.perturbations}
            applied += len(synth.labels)
            recovered += len(set(synth.labels) & found)
            symptoms = {s.term: s.negated for s in result.chief_complaint.symptoms}
            for term in item.get("key_terms", []):
                key_total += 1
                key_kept += symptoms.get(term) is False
            for term in item.get("negated_symptoms", []):
                neg_total += 1
                neg_kept += symptoms.get(term) is not False
    return {
        "messages": len(clean) * seeds,
        "label_recall": recovered / applied if applied else None,
        "key_terms_recovered": key_kept / key_total if key_total else None,
        "negations_kept": neg_kept / neg_total if neg_total else None,
    }


def render(results: dict[str, Any]) -> str:
    quality, speed, trip = results["held_out"], results["latency"], results["round_trip"]
    rows = [
        [sub, f"{m['precision']:.2f}", f"{m['recall']:.2f}", f"{m['f1']:.2f}", str(m["support"])]
        for sub, m in quality["per_subcategory"].items()
    ]
    micro, flags = quality["micro"], quality["red_flags"]
    verdict = results["verdict"]
    lines = [
        "## Intake (rules engine)",
        "",
        f"- Command: `python -m benchmarks.intake`; date {results['date']}; {results['machine']}.",
        f"- Dev set: `tests/data/intake_dev.jsonl`; the tables below score the held-out split "
        f"({quality['messages']} messages with even ids, en + zh), never looked at message by "
        "message while writing detectors.",
        "",
        *table(["subcategory", "precision", "recall", "F1", "support"], rows),
        "",
        *table(
            ["measure", "value", "target", "verdict"],
            [
                ["micro-F1", f"{micro['f1']:.3f}", "≥ 0.80", verdict["micro_f1"]],
                ["red-flag recall", f"{flags['recall']:.3f}", "≥ 0.95", verdict["red_flag_recall"]],
                [
                    "red-flag precision",
                    f"{flags['precision']:.3f}",
                    "≥ 0.80",
                    verdict["red_flag_precision"],
                ],
                [
                    "p95 latency, 2,000 chars en (ms)",
                    f"{speed['en']['p95_ms']:.2f}",
                    "≤ 5",
                    verdict["p95_en"],
                ],
                [
                    "p95 latency, 2,000 chars zh (ms)",
                    f"{speed['zh']['p95_ms']:.2f}",
                    "≤ 5",
                    verdict["p95_zh"],
                ],
            ],
        ),  # fmt: skip
        "",
        *table(
            ["split", "messages", "micro-P", "micro-R", "micro-F1", "red-flag R", "red-flag P"],
            [
                [
                    name,
                    str(q["messages"]),
                    f"{q['micro']['precision']:.3f}",
                    f"{q['micro']['recall']:.3f}",
                    f"{q['micro']['f1']:.3f}",
                    f"{q['red_flags']['recall']:.3f}",
                    f"{q['red_flags']['precision']:.3f}",
                ]
                for name, q in (
                    ("held out (even ids)", results["held_out"]),
                    ("tuning (odd ids)", results["tuning"]),
                    ("all", results["all"]),
                )
            ],
        ),  # fmt: skip
        "",
        f"Negations (held out): {quality['negations'].get('denied', 0)} denied symptoms, "
        f"{quality['negations'].get('flipped', 0)} reported as present (must be 0).",
        "",
        f"Round trip (clean dev messages -> synthesizer, moderate, {results['seeds']} seeds -> "
        f"engine): {trip['messages']} messages; labels recovered "
        f"{_pct(trip['label_recall'])}; key terms recovered {_pct(trip['key_terms_recovered'])}; "
        f"negations kept {_pct(trip['negations_kept'])}.",
        "",
    ]
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--no-record", action="store_true", help="leave RESULTS.md alone")
    args = parser.parse_args()
    engine = RulesEngine()
    items = load_dev_set()
    held_out = score(engine, [item for item in items if is_held_out(item)])
    tuning = score(engine, [item for item in items if not is_held_out(item)])
    quality = held_out
    speed = latency(engine, items, args.repeats)
    met = {
        "micro_f1": quality["micro"]["f1"] >= TARGETS["micro_f1"],
        "red_flag_recall": quality["red_flags"]["recall"] >= TARGETS["red_flag_recall"],
        "red_flag_precision": quality["red_flags"]["precision"] >= TARGETS["red_flag_precision"],
        "p95_en": speed["en"]["p95_ms"] <= TARGETS["p95_ms"],
        "p95_zh": speed["zh"]["p95_ms"] <= TARGETS["p95_ms"],
    }
    results = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}",
        "seeds": args.seeds,
        "held_out": held_out,
        "tuning": tuning,
        "all": score(engine, items),
        "latency": speed,
        "round_trip": round_trip(engine, items, args.seeds),
        "verdict": {key: "met" if ok else "**MISSED**" for key, ok in met.items()},
    }
    publish("intake", results, render(results), args.out, record=not args.no_record)
    return 1 if args.check and not all(met.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
