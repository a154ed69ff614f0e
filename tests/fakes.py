"""Test doubles for the layer below the gateway: a fake vLLM worker over real HTTP.

The fake speaks the slice of vLLM's OpenAI server the gateway uses (`/health`,
`/v1/models`, chat and text completions, streamed or not) and can be told to misbehave:
answer 500, reject as a context overflow, stall, or die in the middle of a stream. It runs
in a real uvicorn server on a loopback port so the gateway's own HTTP client, timeouts and
disconnects are exercised for real. Integration tests against a real vLLM live beside it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class FakeBehaviour:
    """What the fake does next; tests flip these between requests."""

    models: tuple[str, ...] = ("fake-model",)
    reply: str = "Hello from the fake worker."
    schema_reply: str | None = None  # the answer to a request with a JSON-schema response_format
    chunks: int = 5
    chunk_delay_s: float = 0.0
    first_byte_delay_s: float = 0.0
    fail_with: int | None = None  # answer every completion with this status
    die_after_chunks: int | None = None  # drop the connection mid-stream
    healthy: bool = True
    requests: list[dict[str, Any]] = field(default_factory=list)
    adapters: dict[str, str] = field(default_factory=dict)  # loaded at run time: name -> path
    adapter_calls: list[tuple[str, str]] = field(default_factory=list)  # ("load", name), ...
    refuse_adapter_loads: bool = False  # answer loads like vLLM with a bad adapter (500)
    cancelled: int = 0  # streams/requests abandoned by the gateway before completion
    completed: int = 0


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def fake_worker_app(behaviour: FakeBehaviour) -> Starlette:
    async def health(_: Request) -> Response:
        return Response(status_code=200 if behaviour.healthy else 503)

    async def models(_: Request) -> JSONResponse:
        cards = [
            {"id": m, "object": "model", "created": 0, "owned_by": "vllm", "root": m,
             "parent": None, "max_model_len": 2048, "permission": []}
            for m in behaviour.models
        ] + [
            {"id": name, "object": "model", "created": 0, "owned_by": "vllm", "root": path,
             "parent": behaviour.models[0], "max_model_len": None, "permission": []}
            for name, path in behaviour.adapters.items()
        ]  # fmt: skip
        return JSONResponse({"object": "list", "data": cards})

    async def load_adapter(request: Request) -> Response:
        """vLLM's runtime loading (VLLM_ALLOW_RUNTIME_LORA_UPDATING): 400 if loaded."""
        body = await request.json()
        name, path = body.get("lora_name"), body.get("lora_path")
        behaviour.adapter_calls.append(("load", name))
        if name in behaviour.adapters:
            return _error(400, "InvalidUserInput", f"The lora adapter '{name}' has already "
                          "been loaded.")  # fmt: skip
        if behaviour.refuse_adapter_loads:
            return _error(500, "InternalServerError", "fake: cannot load that adapter")
        behaviour.adapters[name] = path
        return Response(f"Success: LoRA adapter '{name}' added successfully.")

    async def unload_adapter(request: Request) -> Response:
        name = (await request.json()).get("lora_name")
        behaviour.adapter_calls.append(("unload", name))
        if behaviour.adapters.pop(name, None) is None:
            return _error(404, "NotFoundError", f"The lora adapter '{name}' cannot be found.")
        return Response(f"Success: LoRA adapter '{name}' removed successfully.")

    async def complete(request: Request) -> Response:
        body = await request.json()
        behaviour.requests.append(body)
        chat = request.url.path.endswith("/chat/completions")
        if body.get("model") not in (*behaviour.models, *behaviour.adapters):
            return _error(404, "NotFoundError", f"The model `{body.get('model')}` does not exist.")
        if behaviour.fail_with == 400:
            return _error(
                400, "BadRequestError",
                "This model's maximum context length is 2048 tokens.", param="messages",
            )  # fmt: skip
        if behaviour.fail_with:
            return _error(behaviour.fail_with, "InternalServerError", "fake failure")
        if not await _wait_unless_disconnected(request, behaviour.first_byte_delay_s):
            behaviour.cancelled += 1  # like vLLM, abandon work whose client has gone
            return Response(status_code=499)
        if body.get("stream"):
            return StreamingResponse(_events(body, chat), media_type="text/event-stream")
        behaviour.completed += 1
        return JSONResponse(_full(body, chat))

    def _full(body: dict[str, Any], chat: bool) -> dict[str, Any]:
        n = int(body.get("n") or 1)  # JSON allows 26.0; vLLM coerces it too
        reply = behaviour.reply
        if behaviour.schema_reply is not None and "response_format" in body:
            reply = behaviour.schema_reply
        if chat:
            choices = [
                {"index": i, "message": {"role": "assistant", "content": reply},
                 "logprobs": None, "finish_reason": "stop"}
                for i in range(n)
            ]  # fmt: skip
        else:
            choices = [
                {"index": i, "text": behaviour.reply, "logprobs": None, "finish_reason": "stop"}
                for i in range(n)
            ]
        return {
            "id": "cmpl-fake", "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()), "model": body["model"], "choices": choices,
            "usage": _usage(7, behaviour.chunks * n),
        }  # fmt: skip

    async def _events(body: dict[str, Any], chat: bool) -> AsyncIterator[bytes]:
        kind = "chat.completion.chunk" if chat else "text_completion"
        head = {"id": "chatcmpl-fake", "object": kind, "created": int(time.time()),
                "model": body["model"]}  # fmt: skip
        words = behaviour.reply.split(" ")
        sent = 0
        try:
            if chat:
                role = {
                    "index": 0,
                    "delta": {"role": "assistant", "content": ""},
                    "finish_reason": None,
                }
                yield _sse({**head, "choices": [role]})
            for i in range(behaviour.chunks):
                if behaviour.die_after_chunks is not None and sent >= behaviour.die_after_chunks:
                    raise ConnectionAbortedError("fake worker died")
                await asyncio.sleep(behaviour.chunk_delay_s)
                piece = words[i % len(words)] + " "
                last = i == behaviour.chunks - 1
                choice: dict[str, Any] = (
                    {
                        "index": 0,
                        "delta": {"content": piece},
                        "finish_reason": "stop" if last else None,
                    }
                    if chat
                    else {"index": 0, "text": piece, "finish_reason": "stop" if last else None}
                )
                yield _sse({**head, "choices": [choice]})
                sent += 1
            if (body.get("stream_options") or {}).get("include_usage"):
                yield _sse({**head, "choices": [], "usage": _usage(7, behaviour.chunks)})
            yield b"data: [DONE]\n\n"
            behaviour.completed += 1
        except (asyncio.CancelledError, GeneratorExit):
            behaviour.cancelled += 1
            raise

    routes = [
        Route("/health", health),
        Route("/v1/models", models),
        Route("/v1/chat/completions", complete, methods=["POST"]),
        Route("/v1/completions", complete, methods=["POST"]),
        Route("/v1/load_lora_adapter", load_adapter, methods=["POST"]),
        Route("/v1/unload_lora_adapter", unload_adapter, methods=["POST"]),
    ]
    return Starlette(routes=routes)


async def _wait_unless_disconnected(request: Request, seconds: float) -> bool:
    """Sleep, but return False early if the caller hangs up (vLLM's `with_cancellation`)."""
    if seconds <= 0:
        return True

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(disconnected())
    try:
        done, _ = await asyncio.wait({watcher}, timeout=seconds)
    finally:
        watcher.cancel()
    return not done


def _sse(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


def _error(status: int, kind: str, message: str, param: str | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": param, "code": status}},
        status_code=status,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerThread:
    """A real uvicorn server for an ASGI app, on a loopback port, in a background thread."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on", timeout_graceful_shutdown=2)  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class ExamBehaviour:
    """A fake OpenAI-compatible endpoint that sits multiple-choice exams with a known skill.

    `answers` maps each question text (as asked, stripped) to its correct option's text; a
    question it does not know (reworded, perturbed) is answered as if guessing. `styles`
    says how each model answers: `oracle` ("B"), `verbose` (a think block, then "The answer
    is (B)."), `text` (the option's text only), `first` (always the first option), `half`
    (right on about half the questions, chosen by a hash of the text), `silent` (names no
    option). `fail_first` answers that many chat requests with a 400 (not retried).
    """

    answers: dict[str, str]
    styles: dict[str, str]
    fail_first: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    authorization: list[str | None] = field(default_factory=list)


def _exam_question(content: str) -> tuple[str, dict[str, str]]:
    """(question, options) out of `training.mcq.mcq_prompt`'s user message."""
    question, listing, _instruction = content.rsplit("\n\n", 2)
    options = {}
    for line in listing.splitlines():
        letter, _, text = line.partition(". ")
        options[letter] = text
    return question.strip(), options


def _exam_answer(style: str, question: str, options: dict[str, str], correct: str | None) -> str:
    letters = sorted(options)
    known = correct is not None
    if style == "half":
        digest = hashlib.sha256(question.encode()).digest()[0]
        known = known and digest % 2 == 0
    chosen = correct if known and correct is not None else letters[0]
    if style == "first":
        chosen = letters[0]
    if style == "verbose":
        thought = f"<think>Options {', '.join(letters)} all seem plausible.</think>"
        return f"{thought}The answer is ({chosen})."
    if style == "text":
        return options[chosen]
    if style == "silent":
        return "I cannot tell from the information given."
    return chosen


def fake_exam_app(behaviour: ExamBehaviour) -> Starlette:
    async def models(_: Request) -> JSONResponse:
        cards = [{"id": model, "object": "model", "owned_by": "fake"} for model in behaviour.styles]
        return JSONResponse({"object": "list", "data": cards})

    async def chat(request: Request) -> Response:
        body = await request.json()
        behaviour.requests.append(body)
        behaviour.authorization.append(request.headers.get("authorization"))
        if len(behaviour.requests) <= behaviour.fail_first:
            return _error(400, "BadRequestError", "fake: refused")
        style = behaviour.styles.get(body.get("model"))
        if style is None:
            return _error(404, "NotFoundError", f"The model `{body.get('model')}` does not exist.")
        question, options = _exam_question(body["messages"][-1]["content"])
        correct_text = behaviour.answers.get(question)
        correct = next((k for k, v in options.items() if v == correct_text), None)
        reply = _exam_answer(style, question, options, correct)
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": reply},
            "logprobs": None,
            "finish_reason": "stop",
        }
        if body.get("logprobs"):
            top = [{"token": reply[:1], "logprob": -0.1, "bytes": None}] + [
                {"token": f" {letter}", "logprob": -3.0, "bytes": None}
                for letter in sorted(options)
                if letter != reply[:1]
            ]
            choice["logprobs"] = {"content": [{"token": reply[:1], "logprob": -0.1,
                                               "top_logprobs": top}]}  # fmt: skip
        return JSONResponse({
            "id": "chatcmpl-exam", "object": "chat.completion", "created": int(time.time()),
            "model": body["model"], "choices": [choice], "usage": _usage(50, 3),
        })  # fmt: skip

    return Starlette(
        routes=[
            Route("/v1/models", models),
            Route("/v1/chat/completions", chat, methods=["POST"]),
        ]
    )
