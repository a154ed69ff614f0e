"""`clinserve serve` on an empty database prints one admin key, once, and it works."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import FakeWorker, wait_until
from tests.fakes import free_port
from tests.serve_process import read_until_started, start_serve


def serve_once(worker: FakeWorker, data_dir: Path) -> tuple[str | None, int, str]:
    """Start, read the start-up output, call /v1/models with the printed key, stop."""
    port = free_port()
    process = start_serve(worker.url, port, data_dir)
    base = f"http://127.0.0.1:{port}"
    try:
        assert process.stdout is not None
        key, _ = read_until_started(process.stdout)
        wait_until(lambda: _ready(base), timeout_s=30, what="gateway ready")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        status = httpx.get(f"{base}/v1/models", headers=headers, timeout=5).status_code
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        rest = process.communicate()[0].decode(errors="replace")
    return key, status, rest


def test_first_start_prints_a_working_admin_key_and_later_starts_do_not(
    start_worker: Callable[..., FakeWorker], tmp_path: Path
) -> None:
    worker = start_worker()
    key, status, rest = serve_once(worker, tmp_path)
    assert key is not None and status == 200
    assert key not in rest, "the key is printed once, and never logged afterwards"
    assert "Traceback" not in rest

    again, status, _ = serve_once(worker, tmp_path)
    assert again is None
    assert status == 401, "a second start creates no key, and no key means 401"
    assert (tmp_path / "clinserve.db").exists()


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/ready", timeout=1).status_code == 200
    except httpx.TransportError:
        return False
