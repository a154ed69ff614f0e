"""Markdown for the gateway overhead results (written into RESULTS.md by `markdown`)."""

from __future__ import annotations

from typing import Any

from benchmarks.gateway_auth import markdown_line
from benchmarks.markdown import table

CAVEATS = """\
- **Two shared cores.** The load generator, the gateway and the mock share the same 2 cores
  with whatever else runs on the machine (the "other" CPU figure). Absolute latencies are
  pessimistic compared with a gateway on its own host; the *difference* between the two
  interleaved paths is the meaningful number, and tails (p99) are sensitive to scheduler noise:
  rerun before drawing conclusions from a p99 that is near its target.
- **In-process, single-threaded load generator.** It timestamps in its socket callbacks (not
  when an awaiting task resumes) and reports its send lag; its CPU use is in every table, and
  the ramp runs the same rates against the mock directly, so a load-generator ceiling shows up
  as the direct path failing first.
- **The mock is not vLLM.** Fixed latency, pre-encoded answers, no tokenizer: it isolates the
  gateway. With a real worker on the same box the worker would compete for CPU; in production
  workers run on GPU hosts and the gateway's cost is what is measured here.
- **What "added" includes.** The gateway path has one extra loopback hop, an extra HTTP parse
  and serialisation on each side, request validation, admission, metrics and the `clinical`
  extension; all of that is gateway overhead by design.
- **Inter-chunk "added"** is a difference of gaps, so a constant per-chunk delay cancels out;
  the "chunk delay" rows (mock write to client read, same monotonic clock) show the per-chunk
  latency the gateway adds.
- **Virtual machine.** On a VM a socket write that wakes a process on the other vCPU is
  costly; at low rates that is a large share of every process's CPU per request (it amortises
  under load). Expect lower CPU per request on bare metal; the ranking of costs holds.
- The gateway runs as one uvicorn process: its ceiling is one core's worth of Python."""


def _num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _errors(errors: dict[str, int]) -> str:
    if not errors:
        return "0"
    return ", ".join(f"{count} {kind}" for kind, count in sorted(errors.items()))


def _cpu(cpu: dict[str, float]) -> str:
    if not cpu:
        return "–"
    keys = ("loadgen", "gateway", "mock", "other")
    return " / ".join(f"{cpu.get(key, 0.0):.2f}" for key in keys)


def _header(results: dict[str, Any]) -> list[str]:
    meta = results["meta"]
    machine, p = meta["machine"], meta["params"]
    load = ", ".join(f"{v:.2f}" for v in machine["loadavg_at_start"])
    return [
        f"- Command: `{meta['command']}` (from the repo root; took {meta['runtime_s']:.0f} s)",
        f"- Date: {meta['date']}",
        f"- Machine: {machine['nproc']} cores ({machine['cpu']}), Python {machine['python']}, "
        f"{machine['platform']}; load average at start {load}",
        f"- Mock worker: {p['latency_ms']:g} ms per non-streaming answer (~640 B JSON); streams "
        f"of {p['chunks']} chunks, first after {p['first_token_ms']:g} ms, then every "
        f"{p['chunk_interval_ms']:g} ms, usage chunk, `[DONE]`. Raw ASGI on uvicorn "
        "(uvloop, httptools), its own process.",
        "- Gateway: `python -m cli.main serve --worker http://127.0.0.1:<mock>` "
        "(`CLINSERVE_LOG_LEVEL=warning`, `CLINSERVE_DRAIN_TIMEOUT_S=5` so it stops quickly, "
        f"`CLINSERVE_INTAKE__MODE={p.get('intake', 'off')}`; otherwise default settings), its "
        "own process, one uvicorn worker.",
        markdown_line(results["audit"], results["gateway_requests"]),
        f"- Load generator: {meta['load_generator']}; open loop, seeded ({p['seed']}) random "
        "order within evenly spaced direct/gateway pairs.",
        f"- Phases: non-streaming {p['rate']:g} req/s per path for {p['duration_s']:g} s; "
        f"streaming {p['stream_rate']:g} streams/s per path for {p['stream_duration_s']:g} s; "
        f"ramp {', '.join(str(r) for r in p['ramp_rates'])} req/s, {p['ramp_step_s']:g} s per "
        "path per step; each overhead phase after a warm-up.",
    ]


def _quality(results: dict[str, Any]) -> list[str]:
    warnings = results.get("run_quality") or []
    if not warnings:
        return ["- Run quality: no outside CPU load or load-generator stalls detected."]
    return ["- **Run quality warnings** (compare with another run before trusting the tails):",
            *(f"  - {warning}" for warning in warnings)]  # fmt: skip


def _targets(results: dict[str, Any]) -> list[str]:
    rows = []
    for t in results["targets"]:
        limit = f"≤ {t['limit_ms']:g} ms" if t["limit_ms"] is not None else "0"
        measured = (
            _num(t["measured_ms"], 3) + " ms" if t["limit_ms"] is not None else str(t.get("errors"))
        )
        rows.append([t["target"], limit, measured, "**met**" if t["met"] else "**MISSED**"])
    return table(["target", "limit", "measured", "verdict"], rows)


def _plain(results: dict[str, Any]) -> list[str]:
    s, p = results["non_streaming"], results["meta"]["params"]
    d, g, a = s["direct"], s["gateway"], s["added"]
    rows = [
        [f"{key} latency (ms)", _num(d.get(key)), _num(g.get(key)), _num(a.get(key))]
        for key in ("p50", "p90", "p99", "mean")
    ]
    rows.append(["max latency (ms)", _num(d.get("max")), _num(g.get("max")), ""])
    rows.append(["successful requests", str(d["n"]), str(g["n"]), ""])
    rows.append(["errors", _errors(s["errors"]["direct"]), _errors(s["errors"]["gateway"]), ""])
    pd, lag = s["paired_difference"], s["loadgen_lag"]
    return [
        f"### Non-streaming, {p['rate']:g} req/s per path ({s['sent']} requests, interleaved)",
        "",
        *table(["", "direct", "gateway", "added (gateway − direct)"], rows),
        "",
        f"Paired differences (gateway − direct within each pair, {pd['n']} pairs): "
        f"p50 {_num(pd.get('p50'))} ms, p90 {_num(pd.get('p90'))} ms, "
        f"p99 {_num(pd.get('p99'))} ms, mean {_num(pd.get('mean'))} ms. "
        f"The gateway's own `clinserve_gateway_overhead_seconds` mean over the phase: "
        f"{_num(s.get('gateway_reported_overhead_mean_ms'))} ms (excludes uvicorn and the socket).",
        "",
        f"Load-generator send lag p50 {_num(lag.get('p50'))} ms, p99 {_num(lag.get('p99'))} ms. "
        f"CPU cores used (load generator / gateway / mock / other): {_cpu(s['cpu_cores'])}; "
        f"that is **{_num(s['cpu_cores'].get('gateway', 0.0) / p['rate'] * 1000)} ms of gateway "
        "CPU per request**.",
    ]


def _stream(results: dict[str, Any]) -> list[str]:
    s, p = results["streaming"], results["meta"]["params"]
    labels = {
        "ttft": "time to first token",
        "inter_chunk": "inter-chunk delay",
        "chunk_delay": "chunk delay, mock write → client read",
        "total": "whole stream",
    }
    rows = []
    for metric, label in labels.items():
        for key in ("p50", "p99"):
            rows.append(
                [
                    f"{label} {key} (ms)",
                    _num(s["direct"][metric].get(key)),
                    _num(s["gateway"][metric].get(key)),
                    _num(s["added"][metric].get(key)),
                ]
            )
    rows.append(
        ["complete streams", str(s["direct"]["ttft"]["n"]), str(s["gateway"]["ttft"]["n"]), ""]
    )
    rows.append(["errors", _errors(s["errors"]["direct"]), _errors(s["errors"]["gateway"]), ""])
    pt, lag = s["paired_ttft_difference"], s["loadgen_lag"]
    return [
        f"### Streaming, {p['stream_rate']:g} streams/s per path ({s['sent']} streams, "
        f"{p['chunks']} chunks each, interleaved)",
        "",
        *table(["", "direct", "gateway", "added (gateway − direct)"], rows),
        "",
        f"Paired TTFT differences: p50 {_num(pt.get('p50'))} ms, p99 {_num(pt.get('p99'))} ms. "
        f"Load-generator send lag p99 {_num(lag.get('p99'))} ms. CPU cores (load generator / "
        f"gateway / mock / other): {_cpu(s['cpu_cores'])}.",
    ]


def _verdict(run: dict[str, Any]) -> str:
    verdict = "yes" if run["held"] else "no: " + "; ".join(run["why_not"])
    return verdict + (" (all cores busy)" if run.get("machine_saturated") else "")


def _ramp_row(step: dict[str, Any]) -> list[str]:
    d, g = step["direct"], step.get("gateway")
    row = [str(step["offered_rps"]), f"{d['achieved_rps']:.0f}", _num(d["latency"].get("p99")),
           _errors(d["errors"]), _cpu(d["cpu_cores"])]  # fmt: skip
    if g is None:
        return row + ["", "", "", "", "not run (failed at a lower rate)"]
    return row + [f"{g['achieved_rps']:.0f}", _num(g["latency"].get("p99")),
                  _errors(g["errors"]), _cpu(g["cpu_cores"]), _verdict(g)]  # fmt: skip


def _ramp(results: dict[str, Any]) -> list[str]:
    r = results["ramp"]
    header = ["offered req/s", "direct achieved", "direct p99 ms", "direct errors",
              "direct CPU", "gateway achieved", "gateway p99 ms", "gateway errors",
              "gateway-run CPU", "gateway held"]  # fmt: skip
    return [
        "### Max sustainable non-streaming rate",
        "",
        f"A step holds with no errors, achieved ≥ 95% of offered, and p99 ≤ {r['p99_limit_ms']:g}"
        " ms (10× the direct p99 above). Each rate runs direct-only, then gateway-only; once the "
        "gateway fails, the direct path keeps stepping up to show the load generator's headroom. "
        "CPU columns: cores used by load generator / gateway / mock / other during that run.",
        "",
        *table(header, [_ramp_row(step) for step in r["steps"]]),
        "",
        f"**Gateway held up to {_num(r['gateway_max_rps'])} req/s; the load generator against "
        f"the mock directly held up to {_num(r['direct_max_rps'])} req/s (of the steps run). "
        f"Limit reached: {r['limited_by']}.**",
    ]


def _calibration(results: dict[str, Any]) -> list[str]:
    c = results["calibration"]
    rows = [
        [name, _num(v["cpu_us_per_request"], 1), _num(v["rps"], 0), str(v["failures"])]
        for name, v in c.items()
    ]
    return [
        "### Load-generator calibration (closed loop, 32 concurrent, against the mock)",
        "",
        *table(["client", "load-generator CPU µs/request", "req/s", "failures"], rows),
        "",
        "The raw client is used for all phases; httpx is shown for comparison (the usual "
        "Python client; the gateway reaches its workers with aiohttp instead, for this cost).",
    ]


def _profile(results: dict[str, Any]) -> list[str]:
    profile = results.get("gateway_profile")
    if not profile:
        return []
    if "error" in profile:
        return ["### Gateway profile (py-spy)", "", f"py-spy failed: {profile['error']}"]

    def rows(key: str, limit: int) -> list[list[str]]:
        return [[f"{e['share']:.1%}", f"`{e['frame']}`"] for e in profile[key][:limit]]

    return [
        "### Gateway profile (py-spy, non-streaming phase; this run's latencies are perturbed)",
        "",
        f"{profile['samples']} on-CPU samples of the gateway; raw stacks in `{profile['file']}`.",
        "",
        *table(["self CPU", "component (package of the executing frame)"],
                rows("components", 12)),
        "",
        *table(["self CPU", "executing frame (line)"], rows("self", 15)),
        "",
        *table(["inclusive CPU", "clinserve function"], rows("clinserve_inclusive", 10)),
    ]  # fmt: skip


def render_markdown(results: dict[str, Any]) -> str:
    parts = [
        ["## Gateway overhead", "", *_header(results), *_quality(results)],
        ["### Targets", "", *_targets(results)],
        _plain(results),
        _stream(results),
        _ramp(results),
        _calibration(results),
        _profile(results),
        ["### Caveats", "", CAVEATS],
    ]
    parts = [part for part in parts if part]
    return "\n\n".join("\n".join(part) for part in parts) + "\n"
