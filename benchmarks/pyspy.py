"""Optional py-spy profile of the gateway during the non-streaming phase (`--profile`).

py-spy samples the gateway from outside, without changing its code, and only non-idle
samples are kept, so the tables show where the gateway's CPU goes. The sampler is another
process on the same two cores, so a profiled run's latencies are perturbed: publish numbers
from a run without `--profile`.

Frames read "function (file:line)". Self time names the line that was executing; a Python
frame such as `Runner.run (asyncio/runners.py:...)` on top means native code below it (the
uvloop event loop: socket reads and writes, epoll).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any


def py_spy_binary() -> str | None:
    """py-spy from the venv (`.venv/bin/pip install py-spy`) or PATH, or None."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Recording:
    """A py-spy recording of one process for a fixed number of seconds."""

    def __init__(self, binary: str, pid: int, seconds: float, output: Path) -> None:
        self.output = output
        duration = str(max(1, round(seconds)))
        # Non-blocking: the gateway is never paused, and py-spy's idle detection works
        # (blocking mode counted idle threadpool threads as busy). Some stacks come out
        # truncated at the root, so the summary leans on leaf frames.
        command = [binary, "record", "--pid", str(pid), "--duration", duration, "--rate", "250"]
        self.process = subprocess.Popen(
            [*command, "--nonblocking", "--format", "raw", "--output", str(output)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def finish(self, timeout_s: float = 30.0) -> dict[str, Any]:
        """Wait for py-spy (killing it if it overstays) and summarise what it wrote."""
        try:
            _, stderr = self.process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate()
        if self.process.returncode != 0 or not self.output.exists():
            return {"error": stderr.decode(errors="replace").strip()[-500:]}
        return summarise(self.output)


# Leaf frames of threads waiting for work, which py-spy sometimes reports as active.
_IDLE = ("Condition.wait (threading.py", "Queue.get (queue.py", "select (selectors.py")

# Leaf frame's top-level module -> the component it belongs to.
_COMPONENTS = {
    **dict.fromkeys(("httpx", "httpcore", "anyio", "h11", "sniffio"), "upstream HTTP client"),
    "uvicorn": "uvicorn (client-facing HTTP)",
    **dict.fromkeys(("fastapi", "starlette"), "FastAPI / Starlette"),
    **dict.fromkeys(("pydantic", "pydantic_core"), "pydantic"),
    "prometheus_client": "prometheus_client",
    "server": "clinserve (server/)",
    **dict.fromkeys(("asyncio", "selectors", "uvloop"), "event loop (uvloop native, syscalls)"),
    "json": "json",
    **dict.fromkeys(("threading", "queue", "concurrent"), "threads (threadpool hop)"),
}


def _location(frame: str) -> str:
    """'f (pkg/mod.py:12)' -> 'pkg/mod.py'."""
    _, _, where = frame.rpartition(" (")
    return where.rstrip(")").rsplit(":", 1)[0]


def component(frame: str) -> str:
    top = _location(frame).split("/", 1)[0].removesuffix(".py")
    return _COMPONENTS.get(top, top or "?")


def summarise(folded: Path, top: int = 20) -> dict[str, Any]:
    """Self samples per leaf frame and per component; clinserve functions inclusive."""
    own: Counter[str] = Counter()
    components: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";") if stack else []
        if not frames or not count.isdigit() or frames[-1].startswith(_IDLE):
            continue
        samples = int(count)
        total += samples
        own[frames[-1]] += samples
        components[component(frames[-1])] += samples
        for name in {
            f.rsplit(":", 1)[0] + ")" for f in frames if _location(f).startswith("server/")
        }:
            ours[name] += samples

    def share(counter: Counter[str], limit: int) -> list[dict[str, Any]]:
        return [{"frame": frame, "share": round(samples / total, 4)}
                for frame, samples in counter.most_common(limit)]  # fmt: skip

    if not total:
        return {"samples": 0, "self": [], "components": [], "clinserve_inclusive": []}
    return {
        "samples": total,
        "file": str(folded),
        "self": share(own, top),
        "components": share(components, top),
        "clinserve_inclusive": share(ours, top),
    }
