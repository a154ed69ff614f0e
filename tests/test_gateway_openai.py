"""The gateway through the official openai SDK, against a fake worker: shapes and round-trips."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import FakeWorker
from tests.fakes import ServerThread


def client(gateway: ServerThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0)


def test_models_lists_what_workers_serve(gateway: ServerThread) -> None:
    models = client(gateway).models.list()
    assert [m.id for m in models.data] == ["fake-model"]


def test_chat_completion_round_trip_with_clinical_extension(
    gateway: ServerThread, worker: FakeWorker
) -> None:
    completion = client(gateway).chat.completions.create(
        model="fake-model",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        temperature=0.2,
        max_completion_tokens=16,
        seed=7,
    )
    assert completion.choices[0].message.content == "Hello from the fake worker."
    assert completion.usage is not None and completion.usage.completion_tokens == 5
    clinical = completion.model_extra["clinical"]  # type: ignore[index]
    assert clinical["request_id"]
    sent = worker.behaviour.requests[-1]
    assert sent["temperature"] == 0.2 and sent["max_completion_tokens"] == 16 and sent["seed"] == 7


def test_streaming_chat_yields_chunks_then_clinical(gateway: ServerThread) -> None:
    stream = client(gateway).chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() == "Hello from the fake worker."
    assert all(c.usage is None for c in chunks), "usage was not asked for, so none is shown"
    assert "clinical" in chunks[-1].model_extra  # type: ignore[operator]
    assert chunks[-1].choices == []


def test_streaming_with_include_usage_keeps_the_usage_chunk(gateway: ServerThread) -> None:
    chunks = list(
        client(gateway).chat.completions.create(
            model="fake-model",
            messages=[{"role": "user", "content": "Hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1 and usage[0].completion_tokens == 5


async def test_async_client_streams(gateway: ServerThread) -> None:
    aclient = openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0)
    stream = await aclient.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text.strip() == "Hello from the fake worker."
    await aclient.close()


def test_text_completions_stream_and_not(gateway: ServerThread) -> None:
    c = client(gateway)
    done = c.completions.create(model="fake-model", prompt="Once", max_tokens=5)
    assert done.choices[0].text == "Hello from the fake worker."
    streamed = list(c.completions.create(model="fake-model", prompt="Once", stream=True))
    assert "".join(x.choices[0].text for x in streamed if x.choices).strip()


def test_client_quirks_are_cleaned_before_the_worker(
    gateway: ServerThread, worker: FakeWorker
) -> None:
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={
            "model": "fake-model",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
            "tools": [],
            "tool_choice": "auto",
            "stream_options": {"include_usage": True},
        },
    )
    assert response.status_code == 200
    sent = worker.behaviour.requests[-1]
    assert "tools" not in sent and "tool_choice" not in sent and "stream_options" not in sent


def test_tools_and_extras_pass_through(gateway: ServerThread, worker: FakeWorker) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    client(gateway).chat.completions.create(
        model="fake-model",
        messages=[{"role": "user", "content": "Hi"}],
        tools=tools,  # type: ignore[arg-type]
        tool_choice="auto",
        response_format={"type": "json_object"},
        logprobs=True,
        top_logprobs=2,
        extra_body={"top_k": 5, "clinical": {"intake": "annotate"}},
    )
    sent = worker.behaviour.requests[-1]
    assert sent["tools"] == tools and sent["tool_choice"] == "auto"
    assert sent["top_k"] == 5 and sent["top_logprobs"] == 2
    assert sent["response_format"] == {"type": "json_object"}
    assert "clinical" not in sent, "the gateway's own options stay in the gateway"


def test_request_id_is_echoed_or_minted(gateway: ServerThread) -> None:
    body = {"model": "fake-model", "messages": [{"role": "user", "content": "Hi"}]}
    given = httpx.post(
        f"{gateway.url}/v1/chat/completions", json=body, headers={"x-request-id": "emr-42"}
    )
    assert given.headers["x-request-id"] == "emr-42"
    assert given.json()["clinical"]["request_id"] == "emr-42"
    minted = httpx.get(f"{gateway.url}/health")
    assert minted.headers["x-request-id"]
    hostile = httpx.get(f"{gateway.url}/health", headers={"x-request-id": "a b\tc<script>"})
    assert hostile.headers["x-request-id"] != "a b\tc<script>"


@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics"])
def test_operational_endpoints(gateway: ServerThread, path: str) -> None:
    assert httpx.get(f"{gateway.url}{path}").status_code == 200
