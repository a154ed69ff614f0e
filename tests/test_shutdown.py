"""Graceful shutdown of a real `clinserve serve` process: drain, then exit 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import FakeWorker, wait_until
from tests.fakes import free_port

ROOT = Path(__file__).resolve().parents[1]
BODY = {"model": "fake-model", "messages": [{"role": "user", "content": "Hi"}], "stream": True}


def test_sigterm_drains_streams_then_exits(
    start_worker: Callable[..., FakeWorker], tmp_path: Path
) -> None:
    worker = start_worker(chunks=30, chunk_delay_s=0.05)
    port = free_port()
    env = {
        **os.environ,
        "CLINSERVE_HEALTH__PROBE_INTERVAL_S": "0.2",
        "CLINSERVE_DRAIN_TIMEOUT_S": "20",
        "PYTHONPATH": str(ROOT),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--worker", worker.url,
         "--port", str(port), "--data-dir", str(tmp_path)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _status(f"{base}/ready") == 200, timeout_s=30, what="gateway ready")
        lines: list[str] = []

        def consume() -> None:
            with httpx.stream("POST", f"{base}/v1/chat/completions", json=BODY, timeout=30) as r:
                lines.extend(line for line in r.iter_lines() if line)

        reader = threading.Thread(target=consume)
        reader.start()
        wait_until(lambda: len(worker.behaviour.requests) == 1, what="stream started")
        process.send_signal(signal.SIGTERM)
        wait_until(lambda: _status(f"{base}/ready") == 503, timeout_s=5, what="ready turns 503")
        refused = httpx.post(f"{base}/v1/chat/completions", json=BODY, timeout=5)
        assert refused.status_code == 503 and refused.headers["retry-after"]
        reader.join(timeout=30)
        assert lines[-1] == "data: [DONE]", "the in-flight stream finished"
        assert worker.behaviour.completed == 1
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        output = process.communicate()[0].decode()
    assert "Traceback" not in output, output


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=1).status_code
    except httpx.TransportError:
        return 0
