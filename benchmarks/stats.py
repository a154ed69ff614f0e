"""Summaries of open-loop runs: latency distributions and what the gateway path adds.

"Added" is reported two ways: gateway percentile minus direct percentile (what a client
sees), and the distribution of paired differences (each gateway request minus its direct
twin, sent within milliseconds of it, so slow moments of the machine largely cancel).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks.loadgen import DIRECT, GATEWAY, Record, Run
from benchmarks.rawhttp import Result


def _ms(values: Sequence[float] | np.ndarray, q: float) -> float | None:
    arr = np.asarray(values, dtype=float)
    return round(float(np.percentile(arr, q)) * 1000, 3) if arr.size else None


def distribution(values: Sequence[float] | np.ndarray) -> dict[str, Any]:
    """n, mean and percentiles in milliseconds, from values in seconds."""
    arr = np.asarray(values, dtype=float)
    if not arr.size:
        return {"n": 0}
    return {
        "n": int(arr.size),
        "mean": round(float(arr.mean()) * 1000, 3),
        "p50": _ms(arr, 50),
        "p90": _ms(arr, 90),
        "p99": _ms(arr, 99),
        "max": round(float(arr.max()) * 1000, 3),
    }


def failure(result: Result, chunks: int) -> str | None:
    """Why a request does not count as a success, or None."""
    if result.error:
        return result.error.split(":")[0]
    if result.status != 200:
        return f"HTTP {result.status}"
    if not result.stream:
        return None if b'"choices"' in result.body else "bad body"
    if not result.saw_done or len(result.content_at) != chunks:
        return "incomplete stream"
    return None


def _errors(records: list[Record], chunks: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in records:
        reason = failure(record.result, chunks)
        if reason:
            counts[reason] = counts.get(reason, 0) + 1
    return counts


def _ok(records: list[Record], path: str, chunks: int) -> dict[int, Result]:
    return {
        r.pair: r.result for r in records if r.path == path and failure(r.result, chunks) is None
    }


def _added(direct: dict[str, Any], gateway: dict[str, Any]) -> dict[str, float | None]:
    """Gateway percentile minus direct percentile, per percentile."""
    out: dict[str, float | None] = {}
    for key in ("p50", "p90", "p99", "mean"):
        d, g = direct.get(key), gateway.get(key)
        out[key] = round(g - d, 3) if d is not None and g is not None else None
    return out


def _lag(records: list[Record]) -> dict[str, Any]:
    lags = [r.lag for r in records if r.result.sent]
    return distribution(lags)


def summarise_plain(run: Run, chunks: int) -> dict[str, Any]:
    """Latency per path, added latency (percentile differences and paired differences)."""
    direct, gateway = _ok(run.records, DIRECT, chunks), _ok(run.records, GATEWAY, chunks)
    d = distribution([r.latency for r in direct.values()])
    g = distribution([r.latency for r in gateway.values()])
    pairs = sorted(direct.keys() & gateway.keys())
    paired = [gateway[p].latency - direct[p].latency for p in pairs]
    return {
        "direct": d,
        "gateway": g,
        "added": _added(d, g),
        "paired_difference": distribution(paired),
        **_run_facts(run, chunks),
    }


def _run_facts(run: Run, chunks: int) -> dict[str, Any]:
    """Errors per path, requests sent, load-generator lag and CPU: the same for every phase."""
    return {
        "errors": {
            path: _errors([r for r in run.records if r.path == path], chunks)
            for path in (DIRECT, GATEWAY)
        },
        "sent": len(run.records),
        "loadgen_lag": _lag(run.records),
        "cpu_cores": run.cpu,
    }


def _stream_metrics(results: list[Result]) -> dict[str, Any]:
    ttft = [r.content_at[0] - r.sent for r in results]
    gaps = np.concatenate([np.diff(r.content_at) for r in results]) if results else np.array([])
    delay = [
        at - stamp / 1e9
        for r in results
        for at, stamp in zip(r.content_at, r.content_stamp_ns, strict=True)
        if stamp
    ]
    return {
        "ttft": distribution(ttft),
        "inter_chunk": distribution(gaps),
        "chunk_delay": distribution(delay),
        "total": distribution([r.latency for r in results]),
    }


def summarise_stream(run: Run, chunks: int) -> dict[str, Any]:
    """TTFT, inter-chunk gaps and one-way chunk delay per path, and what the gateway adds."""
    direct, gateway = _ok(run.records, DIRECT, chunks), _ok(run.records, GATEWAY, chunks)
    d, g = _stream_metrics(list(direct.values())), _stream_metrics(list(gateway.values()))
    pairs = sorted(direct.keys() & gateway.keys())
    paired_ttft = [
        (gateway[p].content_at[0] - gateway[p].sent) - (direct[p].content_at[0] - direct[p].sent)
        for p in pairs
    ]
    return {
        "direct": d,
        "gateway": g,
        "added": {metric: _added(d[metric], g[metric]) for metric in d},
        "paired_ttft_difference": distribution(paired_ttft),
        **_run_facts(run, chunks),
    }


def summarise_step(run: Run, rate: float, p99_limit_ms: float, chunks: int) -> dict[str, Any]:
    """One ramp step on one path, and whether it held (no errors, >=95% rate, sane p99)."""
    ok = [r.result for r in run.records if failure(r.result, chunks) is None]
    errors = _errors(run.records, chunks)
    achieved = len(ok) / max(run.ended - run.started, 1e-9)
    latency = distribution([r.latency for r in ok])
    reasons = []
    if errors:
        reasons.append(f"{sum(errors.values())} errors")
    if achieved < 0.95 * rate:
        reasons.append(f"achieved {achieved:.0f}/s < 95% of {rate:.0f}/s")
    if latency.get("p99") is None or latency["p99"] > p99_limit_ms:
        reasons.append(f"p99 {latency.get('p99')} ms > {p99_limit_ms:.1f} ms")
    return {
        "offered_rps": rate,
        "achieved_rps": round(achieved, 1),
        "latency": latency,
        "errors": errors,
        "loadgen_lag": _lag(run.records),
        "cpu_cores": run.cpu,
        "machine_saturated": run.cpu.get("machine", 0.0) >= 0.9 * (os.cpu_count() or 1),
        "held": not reasons,
        "why_not": reasons,
    }
