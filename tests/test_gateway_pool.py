"""Worker pool behaviour through the gateway: failover, load, disconnects and overload."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import httpx
import openai
import pytest

from tests.conftest import FakeWorker, wait_until
from tests.fakes import ServerThread

BODY = {"model": "fake-model", "messages": [{"role": "user", "content": "Hi"}]}
CHAT = "/v1/chat/completions"

StartWorker = Callable[..., FakeWorker]
StartGateway = Callable[..., ServerThread]


def test_failover_to_a_healthy_worker_before_first_byte(
    start_worker: StartWorker, start_gateway: StartGateway
) -> None:
    broken = start_worker(fail_with=503)
    good = start_worker()
    gateway = start_gateway([broken.url, good.url])
    for _ in range(4):
        assert httpx.post(f"{gateway.url}{CHAT}", json=BODY).status_code == 200
    assert good.behaviour.completed == 4


def test_a_dead_worker_is_skipped(start_worker: StartWorker, start_gateway: StartGateway) -> None:
    good = start_worker()
    gateway = start_gateway([good.url, "http://127.0.0.1:9"])  # nothing listens on port 9
    for _ in range(3):
        assert httpx.post(f"{gateway.url}{CHAT}", json=BODY).status_code == 200


def test_worker_dies_and_comes_back(start_worker: StartWorker, start_gateway: StartGateway) -> None:
    worker = start_worker()
    gateway = start_gateway([worker.url])
    worker.behaviour.healthy = False
    wait_until(lambda: httpx.get(f"{gateway.url}/ready").status_code == 503, what="unready")
    assert httpx.post(f"{gateway.url}{CHAT}", json=BODY).status_code == 503
    worker.behaviour.healthy = True
    wait_until(lambda: httpx.get(f"{gateway.url}/ready").status_code == 200, what="ready again")
    assert httpx.post(f"{gateway.url}{CHAT}", json=BODY).status_code == 200


def test_least_loaded_worker_takes_the_next_request(
    start_worker: StartWorker, start_gateway: StartGateway
) -> None:
    busy = start_worker(first_byte_delay_s=1.5)
    idle = start_worker(first_byte_delay_s=1.5)
    gateway = start_gateway([busy.url, idle.url])
    threads = [
        threading.Thread(target=httpx.post, args=(f"{gateway.url}{CHAT}",), kwargs={"json": BODY})
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    assert len(busy.behaviour.requests) == len(idle.behaviour.requests) == 2


def test_worker_dying_mid_stream_ends_with_an_error_event(
    start_worker: StartWorker, start_gateway: StartGateway
) -> None:
    worker = start_worker(die_after_chunks=2, chunks=5)
    gateway = start_gateway([worker.url])
    sdk = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="x", max_retries=0)
    received = []
    with pytest.raises(openai.APIError):
        for chunk in sdk.chat.completions.create(**BODY, stream=True):  # type: ignore[call-overload]
            received.append(chunk)
    assert received, "the first chunks reached the client before the failure"
    assert len(worker.behaviour.requests) == 1, "no retry once bytes were sent"


def test_client_disconnect_mid_stream_aborts_upstream(
    start_worker: StartWorker, start_gateway: StartGateway
) -> None:
    worker = start_worker(chunks=200, chunk_delay_s=0.05)
    gateway = start_gateway([worker.url])
    with httpx.stream("POST", f"{gateway.url}{CHAT}", json={**BODY, "stream": True}) as response:
        lines = response.iter_lines()
        assert next(lines).startswith("data: ")
    wait_until(lambda: worker.behaviour.cancelled == 1, timeout_s=5, what="upstream abort")
    assert worker.behaviour.completed == 0
    wait_until(lambda: _in_flight(gateway) == 0, timeout_s=5, what="slot released")


def test_client_disconnect_while_waiting_aborts_upstream(
    start_worker: StartWorker, start_gateway: StartGateway
) -> None:
    worker = start_worker(first_byte_delay_s=10)
    gateway = start_gateway([worker.url])
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{gateway.url}{CHAT}", json=BODY, timeout=0.5)
    wait_until(lambda: worker.behaviour.cancelled == 1, timeout_s=5, what="upstream abort")
    wait_until(lambda: _in_flight(gateway) == 0, timeout_s=5, what="slot released")


def test_overload_is_refused_not_queued_forever(
    start_worker: StartWorker, start_gateway: StartGateway
) -> None:
    worker = start_worker(first_byte_delay_s=2)
    gateway = start_gateway(
        [worker.url], limits={"max_in_flight": 1, "max_queue": 1, "queue_timeout_s": 0.5}
    )
    results: list[int] = []

    def call() -> None:
        results.append(httpx.post(f"{gateway.url}{CHAT}", json=BODY, timeout=10).status_code)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
        time.sleep(0.1)
    overflow = httpx.post(f"{gateway.url}{CHAT}", json=BODY, timeout=10)
    for thread in threads:
        thread.join()
    assert overflow.status_code == 429 and overflow.headers["retry-after"]
    assert sorted(results) == [200, 503, 503] or sorted(results) == [200, 429, 503]


def test_metrics_count_requests_tokens_and_workers(gateway: ServerThread) -> None:
    httpx.post(f"{gateway.url}{CHAT}", json=BODY)
    with httpx.stream("POST", f"{gateway.url}{CHAT}", json={**BODY, "stream": True}) as response:
        for _ in response.iter_lines():
            pass
    text = httpx.get(f"{gateway.url}/metrics").text
    assert 'clinserve_requests_total{model="fake-model",route="chat",status="200"} 2.0' in text
    assert 'clinserve_completion_tokens_total{model="fake-model"} 10.0' in text
    assert "clinserve_time_to_first_token_seconds_count" in text
    assert 'clinserve_gateway_overhead_seconds_count{route="chat"} 2.0' in text
    assert "clinserve_worker_healthy{" in text and "clinserve_queue_depth 0.0" in text


def _in_flight(gateway: ServerThread) -> int:
    workers = httpx.get(f"{gateway.url}/ready").json()["workers"]
    return sum(worker["in_flight"] for worker in workers)


def test_ready_reports_workers_without_secrets(gateway: ServerThread) -> None:
    payload = httpx.get(f"{gateway.url}/ready").json()
    assert payload["status"] == "ready"
    assert "api_key" not in json.dumps(payload)
