"""The gateway-overhead run's verdicts: each target met or missed, and reasons to distrust
the run (other load on the box, a starved load generator, answers that were not HTTP 200)."""

from __future__ import annotations

from typing import Any

from benchmarks.loadgen import DIRECT, GATEWAY


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The overhead targets, each with its measured value and verdict."""
    plain, streaming = results["non_streaming"], results["streaming"]
    checks = [
        ("non-streaming added latency p50 (gateway p50 - direct p50)", plain["added"]["p50"], 2.0),
        ("non-streaming added latency p99 (gateway p99 - direct p99)", plain["added"]["p99"], 10.0),
        ("streaming added inter-chunk delay p50", streaming["added"]["inter_chunk"]["p50"], 1.0),
        ("streaming added inter-chunk delay p99", streaming["added"]["inter_chunk"]["p99"], 1.0),
    ]
    errors = sum(sum(plain["errors"][p].values()) for p in (DIRECT, GATEWAY))
    out = [
        {
            "target": name,
            "limit_ms": limit,
            "measured_ms": value,
            "met": value is not None and value <= limit,
        }
        for name, value, limit in checks
    ]
    out.append(
        {
            "target": "no errors at the non-streaming rate",
            "limit_ms": None,
            "measured_ms": None,
            "errors": errors,
            "met": errors == 0,
        }
    )
    not_ok = sum(
        count
        for phase, statuses in results["gateway_requests"]["by_phase"].items()
        if not phase.startswith("ramp")
        for status, count in statuses.items()
        if status != "200"
    )
    out.append(
        {
            "target": "every gateway answer HTTP 200 (warm-ups, non-streaming, streaming)",
            "limit_ms": None,
            "measured_ms": None,
            "errors": not_ok,
            "met": not_ok == 0,
        }
    )
    return out


def run_quality(results: dict[str, Any]) -> list[str]:
    """Reasons to distrust this run's tails: other load on the box, a stalled load generator."""
    warnings = []
    for name in ("non_streaming", "streaming"):
        phase = results[name]
        other = phase["cpu_cores"].get("other", 0.0)
        lag = phase["loadgen_lag"].get("p99") or 0.0
        if other > 0.25:
            warnings.append(f"{name}: other processes used {other:.2f} cores during the phase")
        if lag > 5.0:
            warnings.append(
                f"{name}: load-generator send lag p99 {lag:.1f} ms (it was starved of CPU; "
                "tail latencies of both paths include stalls)"
            )
    saturated = [
        f"{step['offered_rps']}/s"
        for step in results["ramp"]["steps"]
        if step.get(GATEWAY, {}).get("machine_saturated")
    ]
    if saturated:
        warnings.append(f"ramp: all cores busy during the gateway run at {', '.join(saturated)}")
    requests = results["gateway_requests"]
    if requests["unexpected"]:
        statuses = ", ".join(f"{status}: {n}" for status, n in requests["statuses"].items())
        warnings.append(
            f"gateway: {requests['unexpected']} of {requests['sent']} requests did not get "
            f"HTTP 200 ({statuses}; per phase in the JSON)"
        )
    return warnings
