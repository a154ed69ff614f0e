"""Every failure a client can meet comes back in the OpenAI envelope with the right status."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import FakeWorker
from tests.fakes import ServerThread

CHAT = "/v1/chat/completions"


def assert_envelope(
    response: httpx.Response, status: int, param: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == status and error["message"]
    assert "Traceback" not in error["message"]
    if param is not None:
        assert error["param"] == param
    return error


def post(gateway: ServerThread, body: Any, **kw: Any) -> httpx.Response:
    return httpx.post(f"{gateway.url}{CHAT}", json=body, timeout=30, **kw)


def test_malformed_json_is_400(gateway: ServerThread) -> None:
    response = httpx.post(
        f"{gateway.url}{CHAT}", content=b'{"model": ', headers={"content-type": "application/json"}
    )
    assert_envelope(response, 400)


def test_body_that_is_not_an_object_is_400(gateway: ServerThread) -> None:
    assert_envelope(post(gateway, ["not", "an", "object"]), 400)


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "fake-model", "messages": [{"role": "user", "content": "x"}], **fields}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        (chat(messages=[]), "messages"),
        (chat(messages=[{"role": "doctor", "content": "x"}]), "messages[0].role"),
        (chat(messages=[{"role": "tool", "content": "x"}]), "messages[0]"),
        (chat(temperature=9), "temperature"),
        (chat(n=0), "n"),
        (chat(max_tokens=0), "max_tokens"),
        (chat(top_logprobs=50, logprobs=True), "top_logprobs"),
        (chat(response_format={"type": "yaml"}), "response_format.type"),
    ],
)
def test_invalid_fields_are_400_with_param(
    gateway: ServerThread, body: dict[str, Any], param: str
) -> None:
    assert_envelope(post(gateway, body), 400, param=param)


def test_unknown_model_is_404(gateway: ServerThread) -> None:
    body = {"model": "nope", "messages": [{"role": "user", "content": "x"}]}
    assert_envelope(post(gateway, body), 404, param="model")


def test_context_overflow_from_worker_is_400_passed_through(
    start_worker: Callable[..., FakeWorker], start_gateway: Callable[..., ServerThread]
) -> None:
    worker = start_worker(fail_with=400)
    gateway = start_gateway([worker.url])
    body = {"model": "fake-model", "messages": [{"role": "user", "content": "x"}]}
    error = assert_envelope(post(gateway, body), 400, param="messages")
    assert "maximum context length" in error["message"]
    assert len(worker.behaviour.requests) == 1, "a 4xx is the request's fault: no retry"


def test_openai_sdk_raises_typed_errors(gateway: ServerThread) -> None:
    sdk = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.NotFoundError):
        sdk.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(
            model="fake-model", messages=[{"role": "user", "content": "x"}], temperature=5
        )


def test_unknown_route_and_method_are_enveloped(gateway: ServerThread) -> None:
    assert_envelope(httpx.get(f"{gateway.url}/v1/nothing"), 404)
    assert_envelope(httpx.get(f"{gateway.url}{CHAT}"), 405)


def test_oversized_body_is_413(
    worker: FakeWorker, start_gateway: Callable[..., ServerThread]
) -> None:
    gateway = start_gateway([worker.url], limits={"max_body_bytes": 2048})
    body = {"model": "fake-model", "messages": [{"role": "user", "content": "x" * 5000}]}
    assert_envelope(post(gateway, body), 413)
    assert worker.behaviour.requests == []


def test_worker_500_everywhere_is_502(
    start_worker: Callable[..., FakeWorker], start_gateway: Callable[..., ServerThread]
) -> None:
    worker = start_worker(fail_with=500)
    gateway = start_gateway([worker.url])
    body = {"model": "fake-model", "messages": [{"role": "user", "content": "x"}]}
    assert_envelope(post(gateway, body), 502)


def test_slow_worker_is_504(
    start_worker: Callable[..., FakeWorker], start_gateway: Callable[..., ServerThread]
) -> None:
    worker = start_worker(first_byte_delay_s=5)
    gateway = start_gateway([worker.url], limits={"request_timeout_s": 0.5})
    body = {"model": "fake-model", "messages": [{"role": "user", "content": "x"}]}
    assert_envelope(post(gateway, body), 504)


def test_no_healthy_worker_is_503_and_not_ready(
    start_worker: Callable[..., FakeWorker], start_gateway: Callable[..., ServerThread]
) -> None:
    worker = start_worker(healthy=False)
    gateway = start_gateway([worker.url], wait_ready=False)
    assert httpx.get(f"{gateway.url}/ready").status_code == 503
    body = {"model": "fake-model", "messages": [{"role": "user", "content": "x"}]}
    error = assert_envelope(post(gateway, body), 503)
    assert error["type"] == "ServiceUnavailableError"
    assert post(gateway, body).headers["retry-after"]
