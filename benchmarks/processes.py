"""Child processes for benchmarks (started, awaited, always stopped) and CPU accounting.

Each server runs in its own process so the load generator, the gateway and the mock each
get their own event loop and GIL, like in production. CPU time per process is read from
/proc for every phase so a reader can tell which of them ran out of CPU first.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.rawhttp import RawClient

ROOT = Path(__file__).resolve().parent.parent
_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A free loopback port (tiny race until the child binds it; fine for a benchmark)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Child:
    """A server we started: its process, its log, and a loopback client for it."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    port: int

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def start_child(
    name: str, argv: list[str], port: int, log_dir: Path, env: dict[str, str] | None = None
) -> Child:
    """Start `argv` (a Python module invocation) from the repo root, output to a log file."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, *argv],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    return Child(name, process, log_path, port)


def stop_child(child: Child, grace_s: float = 10.0) -> None:
    """SIGTERM, wait up to `grace_s`, then SIGKILL: never leaves a child behind."""
    process = child.process
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace_s)


async def wait_until_ok(child: Child, path: str, timeout_s: float) -> None:
    """Poll GET `path` until 200; fail fast with the child's log if it exits or times out."""
    client = RawClient("127.0.0.1", child.port, max_connections=1)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise RuntimeError(f"{child.name} exited early:\n{child.log_tail()}")
        result = await client.request(client.get(path), stream=False, timeout_s=1.0)
        if result.status == 200:
            client.close_idle()
            return
        await asyncio.sleep(0.05)
    client.close_idle()
    raise RuntimeError(f"{child.name} not ready on {path} in {timeout_s}s:\n{child.log_tail()}")


def _process_ticks(pid: int) -> int:
    """utime + stime of one process, in clock ticks (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5), after "(comm)"


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks over all CPUs since boot."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


@dataclass(frozen=True)
class CpuSnapshot:
    wall: float
    own: float  # this process's CPU seconds
    children: dict[str, int]  # name -> ticks
    machine_busy: int
    machine_total: int


class CpuMeter:
    """CPU used during a phase by the load generator, each child, and everything else."""

    def __init__(self, children: dict[str, int]) -> None:
        self.children = children  # name -> pid

    def snapshot(self) -> CpuSnapshot:
        busy, total = _machine_ticks()
        ticks = {name: _process_ticks(pid) for name, pid in self.children.items()}
        return CpuSnapshot(time.perf_counter(), time.process_time(), ticks, busy, total)

    @staticmethod
    def cores(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
        """Average cores busy per component (1.0 = one core flat out) between two snapshots."""
        wall = max(after.wall - before.wall, 1e-9)
        used = {"loadgen": (after.own - before.own) / wall}
        for name, ticks in after.children.items():
            used[name] = (ticks - before.children.get(name, 0)) / _TICKS / wall
        machine = (after.machine_busy - before.machine_busy) / _TICKS / wall
        used["other"] = max(machine - sum(used.values()), 0.0)
        used["machine"] = machine
        return {name: round(value, 3) for name, value in used.items()}
