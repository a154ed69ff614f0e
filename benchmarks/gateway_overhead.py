"""How much latency and CPU the gateway adds in front of a worker, and how far it scales.

    python -m benchmarks.gateway_overhead [--quick] [--out benchmarks/out]

A fast mock vLLM worker (`benchmarks.mock_upstream`) and the real gateway (`python -m
cli.main serve --worker ...`) each run in their own process; the load generator runs here.
Requests go to the mock directly and through the gateway, interleaved in one open-loop
schedule (pairs in a seeded random order, evenly spaced), so both paths see the same
machine noise and the difference is what the gateway adds. Phases:

1. calibration: load-generator CPU per request with the raw client vs httpx;
2. non-streaming overhead at `--rate` per path;
3. streaming overhead (time to first token, inter-chunk delay) at `--stream-rate` per path;
4. a ramp of non-streaming rates, direct then through the gateway at each step, to find the
   highest rate the gateway holds and whether the load generator's own ceiling came first.

The gateway runs as in production: a key made with `clinserve keys create` (limits far above
the offered load, so the per-key limiter's bookkeeping runs on every request without refusing
any) is sent on every gateway request, and audit is on. Every request sent to the gateway's
/v1 routes is counted with its status (a 401/429 flood is reported loudly, never mistaken for
fast successes) and, after the gateway has stopped, compared with the rows in `audit_events`.

Results go to `<out>/gateway_overhead.json` and `.md`; a full run also refreshes the
"Gateway overhead" section of `benchmarks/RESULTS.md`. `--profile` adds a py-spy profile of
the gateway (in a run of its own: sampling perturbs the numbers).

Pieces: `mock_upstream` (the fake worker), `rawhttp` (the load generator's HTTP client),
`loadgen` (schedules), `stats` (summaries), `processes` (children, CPU accounting),
`pyspy` (profiling), `report` (Markdown), `gateway_auth` (key, request tally, audit count).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import uvloop

from benchmarks.gateway_auth import (
    DATABASE_ENV,
    GatewayTally,
    KeyedClient,
    audit_counts,
    audit_summary,
    create_key,
    non_200_warning,
)
from benchmarks.loadgen import (
    CHAT,
    DIRECT,
    GATEWAY,
    Target,
    chat_body,
    open_loop,
    paired_plan,
    single_plan,
)
from benchmarks.markdown import RESULTS_MD, update_results_md
from benchmarks.processes import Child, CpuMeter, free_port, start_child, stop_child, wait_until_ok
from benchmarks.pyspy import Recording, py_spy_binary
from benchmarks.rawhttp import RawClient
from benchmarks.report import render_markdown
from benchmarks.stats import summarise_plain, summarise_step, summarise_stream
from benchmarks.verdicts import evaluate_targets, run_quality


# --- parameters --------------------------------------------------------------------------
@dataclass(frozen=True)
class Params:
    """Everything that shapes a run; recorded with the results."""

    rate: float = 100.0  # non-streaming requests/s on EACH path (direct, gateway)
    duration_s: float = 20.0
    stream_rate: float = 20.0  # streams/s on each path
    stream_duration_s: float = 15.0
    warmup_s: float = 1.5
    ramp_rates: tuple[int, ...] = (100, 200, 300, 400, 600, 800, 1200, 1600)
    ramp_step_s: float = 5.0
    ramp_budget_s: float = 110.0  # the ramp stops stepping up after this long
    latency_ms: float = 20.0
    first_token_ms: float = 20.0
    chunks: int = 32
    chunk_interval_ms: float = 10.0
    calibration_requests: int = 1500
    request_timeout_s: float = 10.0
    ramp_timeout_s: float = 2.0
    seed: int = 20240601
    intake: str = "off"  # the gateway's intake mode: "off" isolates the proxy itself
    quick: bool = False
    profile: bool = False  # py-spy the gateway during the non-streaming phase

    @classmethod
    def quick_run(cls) -> Params:
        return cls(
            duration_s=5.0,
            stream_duration_s=4.0,
            warmup_s=0.75,
            ramp_rates=(100, 200, 400, 800, 1600),
            ramp_step_s=2.0,
            ramp_budget_s=22.0,
            calibration_requests=400,
            quick=True,
        )


def parse_args(argv: Sequence[str] | None) -> tuple[Params, Path, Path | None, bool]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="~40 s smoke run (noisier)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--rate", type=float, help="non-streaming req/s per path")
    parser.add_argument("--duration", type=float, help="non-streaming phase seconds")
    parser.add_argument("--stream-rate", type=float, help="streams/s per path")
    parser.add_argument("--seed", type=int)
    parser.add_argument(
        "--intake",
        choices=["off", "annotate", "normalize"],
        help="gateway intake mode (default off: the proxy's own overhead, issue 2's target)",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the gateway during the non-streaming phase (perturbs that run's numbers)",
    )
    parser.add_argument(
        "--results-md",
        type=Path,
        help=f"Markdown file whose 'Gateway overhead' section to refresh "
        f"(default: {RESULTS_MD.name} on full runs, none with --quick or --profile)",
    )
    args = parser.parse_args(argv)
    params = Params.quick_run() if args.quick else Params()
    overrides = {
        "rate": args.rate,
        "duration_s": args.duration,
        "stream_rate": args.stream_rate,
        "seed": args.seed,
        "intake": args.intake,
        "profile": args.profile or None,
    }
    params = Params(**{**asdict(params), **{k: v for k, v in overrides.items() if v is not None}})
    results_md = args.results_md or (None if args.quick or args.profile else RESULTS_MD)
    return params, args.out, results_md, args.check


# --- phases ------------------------------------------------------------------------------
async def calibrate(target: Target, requests: int, concurrency: int = 32) -> dict[str, Any]:
    """Load-generator CPU per request, raw client vs httpx, closed loop against the mock."""
    import httpx

    url = f"http://127.0.0.1:{target.client.port}{CHAT}"
    body = chat_body(stream=False)
    raw = RawClient("127.0.0.1", target.client.port)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:

        async def with_raw() -> bool:
            result = await raw.request(target.plain, stream=False, timeout_s=10.0)
            return result.status == 200

        async def with_httpx() -> bool:
            headers = {"content-type": "application/json"}
            response = await client.post(url, content=body, headers=headers)
            return response.status_code == 200

        out = {}
        for name, call in (("raw", with_raw), ("httpx", with_httpx)):
            await _closed_loop(call, concurrency, concurrency)  # warm the connections
            out[name] = await _closed_loop(call, requests, concurrency)
    raw.close_idle()
    return out


async def _closed_loop(call: Any, requests: int, concurrency: int) -> dict[str, Any]:
    remaining = requests
    failures = 0

    async def worker() -> None:
        nonlocal remaining, failures
        while remaining > 0:
            remaining -= 1
            if not await call():
                failures += 1

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), 60)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "requests": requests,
        "failures": failures,
        "cpu_us_per_request": round(cpu / requests * 1e6, 1),
        "rps": round(requests / wall, 1),
    }


async def warm_up(
    targets: dict[str, Target], rate: float, seconds: float, stream: bool, tally: GatewayTally
) -> None:
    """Fresh connections, warm caches; results discarded (but gateway requests counted)."""
    for target in targets.values():
        target.client.close_idle()
    plan = paired_plan(rate, seconds, random.Random(0))
    run = await open_loop(plan, targets, stream=stream, timeout_s=5.0)
    tally.add(f"warm-up ({'streaming' if stream else 'non-streaming'})", run)


async def ramp(
    params: Params,
    targets: dict[str, Target],
    meter: CpuMeter,
    p99_limit_ms: float,
    tally: GatewayTally,
) -> dict[str, Any]:
    """Step the offered rate up, direct then gateway at each step.

    After the gateway fails, the direct path keeps stepping up on its own, so the report
    shows how much headroom the load generator (and mock) had above the gateway's limit.
    """
    steps: list[dict[str, Any]] = []
    began = time.perf_counter()
    gateway_failed = False
    for rate in params.ramp_rates:
        if time.perf_counter() - began > params.ramp_budget_s:
            break
        step: dict[str, Any] = {"offered_rps": rate}
        for path in (DIRECT,) if gateway_failed else (DIRECT, GATEWAY):
            step[path] = await _ramp_run(params, targets, meter, p99_limit_ms, rate, path, tally)
        steps.append(step)
        print(_step_line(step), flush=True)
        if GATEWAY in step and not step[GATEWAY]["held"]:
            gateway_failed = True
        if not step[DIRECT]["held"]:
            break
    return {"p99_limit_ms": round(p99_limit_ms, 3), "steps": steps, **_ceilings(steps)}


async def _ramp_run(
    params: Params,
    targets: dict[str, Target],
    meter: CpuMeter,
    p99_limit_ms: float,
    rate: int,
    path: str,
    tally: GatewayTally,
) -> dict[str, Any]:
    targets[path].client.close_idle()
    await asyncio.sleep(0.3)  # let the previous run's stragglers clear
    plan = single_plan(rate, params.ramp_step_s, path)
    run = await open_loop(plan, targets, stream=False, timeout_s=params.ramp_timeout_s, meter=meter)
    tally.add(f"ramp {rate}/s", run)
    return summarise_step(run, rate, p99_limit_ms, params.chunks)


def _step_line(step: dict[str, Any]) -> str:
    parts = [f"  ramp {step['offered_rps']:>5}/s"]
    for path in (DIRECT, GATEWAY):
        s = step.get(path)
        if s is None:
            parts.append(f"{path} not run (failed at a lower rate)")
            continue
        verdict = "held" if s["held"] else "FAILED " + "; ".join(s["why_not"])
        parts.append(f"{path} {s['achieved_rps']:.0f}/s p99 {s['latency'].get('p99')} ms {verdict}")
    return " | ".join(parts)


def _ceilings(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Highest held rate per path, and whose limit was reached first."""

    def highest(path: str) -> int | None:
        held = [s["offered_rps"] for s in steps if path in s and s[path]["held"]]
        return max(held) if held else None

    failed = [s for s in steps if GATEWAY in s and not s[GATEWAY]["held"]]
    if not steps:
        limited_by = "no steps ran"
    elif not failed:
        direct_failed = not steps[-1][DIRECT]["held"]
        limited_by = (
            "load generator / mock (direct path failed first; gateway ceiling unknown)"
            if direct_failed
            else "none reached (top step or time budget)"
        )
    elif not failed[0][DIRECT]["held"]:
        limited_by = "load generator / mock (direct path failed at the same rate as the gateway)"
    else:
        limited_by = "gateway (the direct path held at the rate where the gateway failed)"
        run = failed[0][GATEWAY]
        if run.get("machine_saturated"):
            cpu = run["cpu_cores"]
            limited_by += (
                f"; all cores were busy during that run (gateway {cpu.get('gateway', 0):.2f}, "
                f"other processes {cpu.get('other', 0):.2f} cores), so a quieter machine may "
                "hold more"
            )
    return {
        "gateway_max_rps": highest(GATEWAY),
        "direct_max_rps": highest(DIRECT),
        "limited_by": limited_by,
    }


_METRIC = re.compile(r'^clinserve_gateway_overhead_seconds_(sum|count)\{route="chat"\} (\S+)$')


async def gateway_overhead_metric(gateway: Target) -> dict[str, float]:
    """The gateway's own overhead histogram (sum, count), for a cross-check per phase."""
    client = gateway.client
    result = await client.request(client.get("/metrics"), stream=False, timeout_s=5.0)
    found = {}
    for line in result.body.decode(errors="replace").splitlines():
        match = _METRIC.match(line)
        if match:
            found[match.group(1)] = float(match.group(2))
    return found


def _metric_mean_ms(before: dict[str, float], after: dict[str, float]) -> float | None:
    count = after.get("count", 0.0) - before.get("count", 0.0)
    total = after.get("sum", 0.0) - before.get("sum", 0.0)
    return round(total / count * 1000, 3) if count else None


async def measure(
    params: Params, mock: Child, gateway: Child, key: str, out: Path, tally: GatewayTally
) -> dict[str, Any]:
    """All phases against already-started servers; gateway requests carry `key`.

    Every open-loop run's gateway requests (warm-ups included) are added to `tally`.
    """
    await wait_until_ok(mock, "/health", 20)
    await wait_until_ok(gateway, "/ready", 60)
    targets = {  # requests are pre-encoded per target: only the gateway's carry the key
        DIRECT: Target(DIRECT, RawClient("127.0.0.1", mock.port)),
        GATEWAY: Target(GATEWAY, KeyedClient("127.0.0.1", gateway.port, key)),
    }
    meter = CpuMeter({"gateway": gateway.process.pid, "mock": mock.process.pid})
    rng = random.Random(params.seed)

    print("calibrating the load generator (raw client vs httpx)...", flush=True)
    calibration = await calibrate(targets[DIRECT], params.calibration_requests)

    print(f"non-streaming: {params.rate:g}/s per path for {params.duration_s:g}s...", flush=True)
    await warm_up(targets, params.rate, params.warmup_s, stream=False, tally=tally)
    metric_before = await gateway_overhead_metric(targets[GATEWAY])
    recording = start_profile(params, gateway, out)
    plan = paired_plan(params.rate, params.duration_s, rng)
    run = await open_loop(
        plan, targets, stream=False, timeout_s=params.request_timeout_s, meter=meter
    )
    tally.add("non-streaming", run)
    plain = summarise_plain(run, params.chunks)
    profile = recording.finish() if recording else None
    metric_after = await gateway_overhead_metric(targets[GATEWAY])
    plain["gateway_reported_overhead_mean_ms"] = _metric_mean_ms(metric_before, metric_after)

    print(
        f"streaming: {params.stream_rate:g}/s per path for {params.stream_duration_s:g}s...",
        flush=True,
    )
    await warm_up(targets, params.stream_rate, params.warmup_s, stream=True, tally=tally)
    plan = paired_plan(params.stream_rate, params.stream_duration_s, rng)
    run = await open_loop(
        plan, targets, stream=True, timeout_s=params.request_timeout_s, meter=meter
    )
    tally.add("streaming", run)
    streaming = summarise_stream(run, params.chunks)

    print("ramp (non-streaming, direct then gateway at each rate):", flush=True)
    p99_limit = 10 * (plain["direct"].get("p99") or params.latency_ms)
    ramped = await ramp(params, targets, meter, p99_limit, tally)
    for target in targets.values():
        target.client.close_idle()
    results = {
        "calibration": calibration,
        "non_streaming": plain,
        "streaming": streaming,
        "ramp": ramped,
    }
    if profile is not None:
        results["gateway_profile"] = profile
    return results


def start_profile(params: Params, gateway: Child, out: Path) -> Recording | None:
    """Attach py-spy to the gateway for the non-streaming phase, if asked and installed."""
    if not params.profile:
        return None
    binary = py_spy_binary()
    if binary is None:
        print("--profile: py-spy not found (.venv/bin/pip install py-spy); not profiling")
        return None
    output = out / "gateway_profile.txt"
    return Recording(binary, gateway.process.pid, params.duration_s, output)


# --- bookkeeping ---------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    import platform

    model = ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(
                (
                    line.split(":", 1)[1].strip()
                    for line in cpuinfo
                    if line.startswith("model name")
                ),
                "",
            )
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": os.getloadavg(),
    }


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
    raise SystemExit(128 + signum)  # so the finally blocks stop the children


def mock_argv(params: Params, port: int) -> list[str]:
    return ["-m", "benchmarks.mock_upstream", "--port", str(port),
            "--latency-ms", str(params.latency_ms),
            "--first-token-ms", str(params.first_token_ms),
            "--chunks", str(params.chunks),
            "--chunk-interval-ms", str(params.chunk_interval_ms)]  # fmt: skip


def gateway_argv(mock_port: int, port: int, data_dir: str) -> list[str]:
    """Exactly what an operator runs: `clinserve serve` against an external worker."""
    return ["-m", "cli.main", "serve", "--worker", f"http://127.0.0.1:{mock_port}",
            "--port", str(port), "--data-dir", data_dir]  # fmt: skip


# Quiet logs; a short drain so stopping never waits on the 60 s default. Auth and audit are on
# by default; set here too so an inherited environment cannot switch them off.
GATEWAY_ENV = {
    "CLINSERVE_LOG_LEVEL": "warning",
    "CLINSERVE_DRAIN_TIMEOUT_S": "5",
    "CLINSERVE_AUTH__ENABLED": "true",
    "CLINSERVE_AUDIT": "true",
    **DATABASE_ENV,
}
GATEWAY_STOP_GRACE_S = 30.0  # drain (5 s) plus the audit writer's final flush


def run_benchmark(params: Params, out: Path) -> dict[str, Any]:
    """Make a key, start the mock and the gateway, measure, and always stop both.

    The gateway is stopped (SIGTERM: it drains and flushes its audit writer) before the audit
    rows are counted, and both happen before the temporary data dir is deleted.
    """
    out.mkdir(parents=True, exist_ok=True)
    children: list[Child] = []
    try:
        with tempfile.TemporaryDirectory(prefix="clinserve-bench-") as data_dir:
            key = create_key(data_dir)
            mock_port, gateway_port = free_port(), free_port()
            mock = start_child("mock", mock_argv(params, mock_port), mock_port, out)
            children.append(mock)
            argv = gateway_argv(mock_port, gateway_port, data_dir)
            env = {**GATEWAY_ENV, "CLINSERVE_INTAKE__MODE": params.intake}
            gateway = start_child("gateway", argv, gateway_port, out, env=env)
            children.append(gateway)
            tally = GatewayTally()
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                results = runner.run(measure(params, mock, gateway, key, out, tally))
            results["gateway_requests"] = tally.summary()
            stop_child(gateway, grace_s=GATEWAY_STOP_GRACE_S)
            results["audit"] = audit_counts(tally.sent, data_dir, gateway.process.returncode)
            return results
    finally:
        for child in reversed(children):  # the gateway first, then its worker
            stop_child(child)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    params, out, results_md, check = parse_args(args)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    started = time.time()
    info = machine_info()
    try:
        results = run_benchmark(params, out)
    except KeyboardInterrupt:
        print("interrupted; mock and gateway stopped", file=sys.stderr)
        return 130
    results["targets"] = evaluate_targets(results)
    results["run_quality"] = run_quality(results)
    results["meta"] = {
        "command": " ".join(["python -m benchmarks.gateway_overhead", *args]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(started)),
        "runtime_s": round(time.time() - started, 1),
        "machine": info,
        "load_generator": "raw asyncio + httptools client on uvloop (benchmarks/rawhttp.py)",
        "params": asdict(params),
    }
    (out / "gateway_overhead.json").write_text(json.dumps(results, indent=2) + "\n")
    markdown = render_markdown(results)
    (out / "gateway_overhead.md").write_text(markdown)
    print()
    print(markdown)
    print(f"gateway requests: {json.dumps(results['gateway_requests']['statuses'])}")
    print(f"audit: {json.dumps(audit_summary(results['audit']))}")
    warning = non_200_warning(results["gateway_requests"])
    if warning:
        print(warning, file=sys.stderr, flush=True)
    if results_md is not None:
        update_results_md(results_md, "gateway_overhead", markdown)
        print(f"updated {results_md}")
    return 1 if check and not all(t["met"] for t in results["targets"]) else 0


if __name__ == "__main__":
    sys.exit(main())
