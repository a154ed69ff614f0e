"""evaluation.endpoint against an in-process fake endpoint (httpx.MockTransport), and once
against the fake vLLM worker over real HTTP.

The fake answers from a script of planned outcomes (a status with headers, a dropped
connection, a read timeout, a non-JSON page); the injected `sleep` records each backoff
delay instead of waiting, so retry tests run instantly and can check the delays.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from evaluation.endpoint import Endpoint, EndpointClient, EndpointError
from tests.conftest import FakeWorker

BASE_URL = "http://endpoint.test/v1"
PROMPT = "My chest has been hurting since this morning and my left arm feels numb"
BODY = {"messages": [{"role": "user", "content": PROMPT}], "max_tokens": 8}


def completion(text: str = "Answer: B") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
    }


def error(status: int, message: str, headers: dict[str, str] | None = None) -> httpx.Response:
    envelope = {"error": {"message": message, "type": "Error", "param": None, "code": status}}
    return httpx.Response(status, json=envelope, headers=headers)


@dataclass
class FakeEndpoint:
    """Answers each request with the next planned outcome, then with a chat completion."""

    plan: list[httpx.Response | str] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            for _ in range(3):  # let the other requests in flight run
                await asyncio.sleep(0)
        finally:
            self.in_flight -= 1
        if request.url.path.endswith("/models"):
            return httpx.Response(
                200, json={"object": "list", "data": [{"id": "m1"}, {"id": "m2"}]}
            )
        planned = self.plan.pop(0) if self.plan else None
        if planned == "drop":
            raise httpx.ConnectError("connection refused", request=request)
        if planned == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        if isinstance(planned, httpx.Response):
            return planned
        return httpx.Response(200, json=completion())

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(request.content) for request in self.requests]


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def client(fake: FakeEndpoint, sleeps: Sleeps | None = None, **settings: Any) -> EndpointClient:
    values: dict[str, Any] = {"base_url": BASE_URL, "api_key": None, "model": "test-model"}
    endpoint = Endpoint(**{**values, **settings})
    return EndpointClient(endpoint, transport=fake.transport(), sleep=sleeps or Sleeps())


async def test_chat_returns_the_completion_and_fills_in_the_model() -> None:
    fake = FakeEndpoint()
    async with client(fake) as endpoint:
        answer = await endpoint.chat(BODY)
        await endpoint.chat({**BODY, "model": "other-model"})
    assert answer == completion()
    assert [request.url for request in fake.requests] == [f"{BASE_URL}/chat/completions"] * 2
    assert [body["model"] for body in fake.bodies()] == ["test-model", "other-model"]
    assert fake.bodies()[0]["messages"] == BODY["messages"]
    assert "model" not in BODY  # the caller's dict is left alone


async def test_the_key_travels_as_a_bearer_token_and_none_sends_no_header() -> None:
    fake = FakeEndpoint()
    async with client(fake, api_key="sk-secret") as endpoint:
        await endpoint.chat(BODY)
    async with client(fake) as endpoint:
        await endpoint.chat(BODY)
    assert fake.requests[0].headers["authorization"] == "Bearer sk-secret"
    assert "authorization" not in fake.requests[1].headers
    assert "sk-secret" not in repr(Endpoint(BASE_URL, "sk-secret", "m"))


@pytest.mark.parametrize("base_url", [BASE_URL, BASE_URL + "/"])
async def test_base_url_with_or_without_a_trailing_slash(base_url: str) -> None:
    fake = FakeEndpoint()
    async with client(fake, base_url=base_url) as endpoint:
        await endpoint.chat(BODY)
        assert await endpoint.models() == ["m1", "m2"]
    assert [str(request.url) for request in fake.requests] == [
        "http://endpoint.test/v1/chat/completions",
        "http://endpoint.test/v1/models",
    ]
    assert fake.requests[1].method == "GET"


@pytest.mark.parametrize(("retry_after", "waited"), [("3", 3.0), ("600", 60.0), ("0", 0.0)])
async def test_429_waits_as_long_as_retry_after_says_up_to_a_cap(
    retry_after: str, waited: float
) -> None:
    fake = FakeEndpoint(plan=[error(429, "slow down", {"Retry-After": retry_after})])
    sleeps = Sleeps()
    async with client(fake, sleeps) as endpoint:
        assert await endpoint.chat(BODY) == completion()
    assert sleeps.delays == [waited]
    assert len(fake.requests) == 2


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
async def test_transient_statuses_are_retried(status: int) -> None:
    fake = FakeEndpoint(plan=[error(status, "busy"), error(status, "busy")])
    sleeps = Sleeps()
    async with client(fake, sleeps) as endpoint:
        assert await endpoint.chat(BODY) == completion()
    assert len(fake.requests) == 3
    assert len(sleeps.delays) == 2


async def test_503_until_retries_run_out_names_the_status_and_backs_off_with_jitter() -> None:
    fake = FakeEndpoint(plan=[error(503, "worker restarting")] * 21)
    sleeps = Sleeps()
    async with client(fake, sleeps, max_retries=20) as endpoint:
        with pytest.raises(EndpointError) as raised:
            await endpoint.chat(BODY)
    assert raised.value.status == 503
    assert str(raised.value) == (
        "POST /v1/chat/completions: HTTP 503: worker restarting (gave up after 21 attempts)"
    )
    assert len(fake.requests) == 21
    # full jitter under 0.5 s doubling, capped at 20 s: many draws, so a looser cap would show
    caps = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0] + [20.0] * 14
    assert len(sleeps.delays) == len(caps)
    assert all(0.0 <= delay <= cap for delay, cap in zip(sleeps.delays, caps, strict=True))
    assert len(set(sleeps.delays)) == len(caps)  # jittered, not a fixed schedule


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422, 501])
async def test_a_refusal_retries_cannot_fix_raises_at_once_with_its_message(status: int) -> None:
    fake = FakeEndpoint(plan=[error(status, "This model's maximum context length is 2048.")])
    sleeps = Sleeps()
    async with client(fake, sleeps) as endpoint:
        with pytest.raises(EndpointError) as raised:
            await endpoint.chat(BODY)
    assert raised.value.status == status
    assert str(raised.value) == (
        f"POST /v1/chat/completions: HTTP {status}: This model's maximum context length is 2048."
    )
    assert len(fake.requests) == 1
    assert sleeps.delays == []


async def test_error_messages_never_quote_the_request() -> None:
    """vLLM's validation errors echo the offending input; the endpoint may echo it verbatim."""
    echoes = [
        f"Prompt rejected: {PROMPT}",
        "1 validation error:\n  {'type': 'string_type', 'loc': ('body', 'messages'), "
        f"'msg': 'Input should be a valid string', 'input': '{PROMPT[:30]}...[truncated]'}}",
        f"1 validation error for Chat\nmessages\n  input_value={{'content': '{PROMPT[:20]}'}}, "
        "input_type=dict]",
    ]
    for echo in echoes:
        fake = FakeEndpoint(plan=[error(400, echo)])
        async with client(fake) as endpoint:
            with pytest.raises(EndpointError) as raised:
                await endpoint.chat(BODY)
        message = str(raised.value)
        assert "HTTP 400" in message
        assert "[request text]" in message
        assert PROMPT[:12] not in message


async def test_a_long_error_message_is_cut_to_300_characters() -> None:
    fake = FakeEndpoint(plan=[error(404, "x" * 5000)])
    async with client(fake) as endpoint:
        with pytest.raises(EndpointError) as raised:
            await endpoint.chat(BODY)
    reason = str(raised.value).split("HTTP 404: ", 1)[1]
    assert len(reason) == 300
    assert reason.endswith("…")


@pytest.mark.parametrize("failure", ["drop", "timeout"])
async def test_lost_connections_and_read_timeouts_are_retried(failure: str) -> None:
    fake = FakeEndpoint(plan=[failure, failure])
    sleeps = Sleeps()
    async with client(fake, sleeps) as endpoint:
        assert await endpoint.chat(BODY) == completion()
    assert len(fake.requests) == 3
    assert len(sleeps.delays) == 2


async def test_a_connection_that_never_comes_back_has_no_status() -> None:
    fake = FakeEndpoint(plan=["drop"] * 3)
    async with client(fake, max_retries=2) as endpoint:
        with pytest.raises(EndpointError) as raised:
            await endpoint.chat(BODY)
    assert raised.value.status is None
    assert "ConnectError" in str(raised.value)
    assert "3 attempts" in str(raised.value)


@pytest.mark.parametrize(
    ("response", "complaint"),
    [
        (httpx.Response(200, text="<html>proxy login</html>"), "not a JSON object"),
        (httpx.Response(200, json=["not", "an", "object"]), "not a JSON object"),
        (httpx.Response(200, json={"object": "chat.completion", "choices": []}), "choices"),
        (httpx.Response(200, json={"choices": [{"text": "B"}]}), "choices[0].message"),
    ],
)
async def test_a_200_that_is_not_a_chat_completion_is_an_error(
    response: httpx.Response, complaint: str
) -> None:
    fake = FakeEndpoint(plan=[response])
    async with client(fake) as endpoint:
        with pytest.raises(EndpointError, match=complaint.replace("[", r"\[")) as raised:
            await endpoint.chat(BODY)
    assert raised.value.status == 200
    assert len(fake.requests) == 1


async def test_models_lists_ids_and_refuses_a_malformed_list() -> None:
    fake = FakeEndpoint()
    async with client(fake) as endpoint:
        assert await endpoint.models() == ["m1", "m2"]

    def no_ids(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": [{"name": "m1"}]})

    endpoint_settings = Endpoint(BASE_URL, None, "m")
    async with EndpointClient(endpoint_settings, transport=httpx.MockTransport(no_ids)) as bad:
        with pytest.raises(EndpointError, match="not a model list"):
            await bad.models()


async def test_no_more_requests_in_flight_than_the_concurrency_allows() -> None:
    fake = FakeEndpoint(plan=[error(503, "busy")] * 5)  # retries hold their slot too
    async with client(fake, concurrency=3) as endpoint:
        answers = await asyncio.gather(*(endpoint.chat(BODY) for _ in range(20)))
    assert answers == [completion()] * 20
    assert len(fake.requests) == 25
    assert fake.most_in_flight == 3  # never more, and the limit is actually used


async def test_settings_that_cannot_work_are_refused() -> None:
    with pytest.raises(ValueError, match="http"):
        Endpoint("endpoint.test/v1", None, "m")
    for bad in ({"concurrency": 0}, {"max_retries": -1}, {"timeout_s": 0}):
        with pytest.raises(ValueError, match="concurrency"):
            Endpoint(BASE_URL, None, "m", **bad)
    with pytest.raises(RuntimeError, match="async with"):
        await EndpointClient(Endpoint(BASE_URL, None, "m")).chat(BODY)


async def test_against_the_fake_worker_over_real_http(worker: FakeWorker) -> None:
    endpoint = Endpoint(base_url=worker.url + "/v1/", api_key="sk-any", model="fake-model")
    async with EndpointClient(endpoint) as real:
        assert await real.models() == ["fake-model"]
        answer = await real.chat(BODY)
        with pytest.raises(EndpointError) as raised:
            await real.chat({**BODY, "model": "no-such-model"})
    assert answer["choices"][0]["message"]["content"] == "Hello from the fake worker."
    assert worker.behaviour.requests[0]["model"] == "fake-model"
    assert raised.value.status == 404
    assert "does not exist" in str(raised.value)
