"""Shared fixtures: fake workers and gateways on real loopback ports."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from retrieval.embedder import Embedder
from retrieval.index import Index
from server.app import create_app
from server.settings import Settings
from tests.fakes import FakeBehaviour, ServerThread, fake_worker_app


def wait_until(predicate: Callable[[], bool], timeout_s: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.02)


def isolated_settings(tmp_path: Path, workers: list[str], **overrides: Any) -> Settings:
    """Settings isolated from the developer's environment, with fast health probes.

    Authentication is off unless a test turns it on: tests of the layers behind it need no
    keys, and tests/test_auth_*.py exercise it with real keys in the real database.
    """
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "workers": workers,
        "auth": {"enabled": False},
        "health": {"probe_interval_s": 0.2, "probe_timeout_s": 1.0, "failures_before_unhealthy": 1},
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class FakeWorker:
    def __init__(self, server: ServerThread, behaviour: FakeBehaviour) -> None:
        self.server = server
        self.behaviour = behaviour
        self.url = server.url


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as exit_stack:
        yield exit_stack


@pytest.fixture
def start_worker(stack: ExitStack) -> Callable[..., FakeWorker]:
    def start(**behaviour: Any) -> FakeWorker:
        state = FakeBehaviour(**behaviour)
        server = stack.enter_context(ServerThread(fake_worker_app(state)))
        return FakeWorker(server, state)

    return start


@pytest.fixture
def start_gateway(stack: ExitStack, tmp_path: Path) -> Callable[..., ServerThread]:
    def start(workers: list[str], wait_ready: bool = True, **overrides: Any) -> ServerThread:
        app = create_app(isolated_settings(tmp_path, workers, **overrides))
        server = stack.enter_context(ServerThread(app))
        if wait_ready:
            wait_until(
                lambda: httpx.get(f"{server.url}/ready").status_code == 200, what="gateway ready"
            )
        return server

    return start


@pytest.fixture
def worker(start_worker: Callable[..., FakeWorker]) -> FakeWorker:
    return start_worker()


@pytest.fixture
def gateway(start_gateway: Callable[..., ServerThread], worker: FakeWorker) -> ServerThread:
    return start_gateway([worker.url])


GUIDELINES = Path(__file__).resolve().parents[1] / "data" / "guidelines"


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The packaged embedder, loaded once for the whole run (torch import: seconds)."""
    return Embedder()


@pytest.fixture(scope="session")
def guideline_index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Index:
    """The sample guideline corpus, indexed once for the whole run."""
    from retrieval.documents import load_corpus
    from retrieval.index import build_index

    documents, problems = load_corpus([GUIDELINES])
    assert not problems
    return build_index(documents, embedder, tmp_path_factory.mktemp("index") / "guidelines")
