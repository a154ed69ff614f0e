"""Graceful shutdown of a real `clinserve serve` process: drain, then exit 0."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import FakeWorker, wait_until
from tests.fakes import free_port
from tests.serve_process import read_until_started, start_serve

BODY = {"model": "fake-model", "messages": [{"role": "user", "content": "Hi"}], "stream": True}


def test_sigterm_drains_streams_then_exits(
    start_worker: Callable[..., FakeWorker], tmp_path: Path
) -> None:
    worker = start_worker(chunks=30, chunk_delay_s=0.05)
    port = free_port()
    process = start_serve(
        worker.url, port, tmp_path,
        CLINSERVE_HEALTH__PROBE_INTERVAL_S="0.2", CLINSERVE_DRAIN_TIMEOUT_S="20",
    )  # fmt: skip
    assert process.stdout is not None
    key, _ = read_until_started(process.stdout)
    assert key is not None, "first start prints the bootstrap admin key"
    auth = {"Authorization": f"Bearer {key}"}
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _status(f"{base}/ready") == 200, timeout_s=30, what="gateway ready")
        lines: list[str] = []

        def consume() -> None:
            with httpx.stream(
                "POST", f"{base}/v1/chat/completions", json=BODY, headers=auth, timeout=30
            ) as r:
                lines.extend(line for line in r.iter_lines() if line)

        reader = threading.Thread(target=consume)
        reader.start()
        wait_until(lambda: len(worker.behaviour.requests) == 1, what="stream started")
        process.send_signal(signal.SIGTERM)
        wait_until(lambda: _status(f"{base}/ready") == 503, timeout_s=5, what="ready turns 503")
        refused = httpx.post(f"{base}/v1/chat/completions", json=BODY, headers=auth, timeout=5)
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
