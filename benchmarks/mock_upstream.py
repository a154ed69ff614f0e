"""A deliberately cheap stand-in for a vLLM worker, so the benchmark measures the gateway.

`tests/fakes.py` is a Starlette app that records every request; that is right for tests but
costs more CPU per request than the gateway path we want to see, on a machine where the
mock, the gateway and the load generator share two cores. This is a raw ASGI app under bare
uvicorn (uvloop + httptools, no access log): it parses the request JSON once, sleeps a fixed
latency and writes pre-encoded bytes. It speaks the slice of vLLM's OpenAI server the
gateway uses: `/health`, `/v1/models` (one model, "bench-model") and `/v1/chat/completions`,
streamed (chat.completion.chunk events, usage chunk on request, `data: [DONE]`) or not.

Each streamed chunk carries the mock's send time (`time.perf_counter_ns()`, CLOCK_MONOTONIC,
shared by all processes on Linux) in `system_fingerprint`, a string field of OpenAI's chunk
schema, so a client can measure one-way chunk delay (mock write -> client read) per path.

Run: `python -m benchmarks.mock_upstream --port 9000 [--latency-ms 20] [--chunks 32]`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

MODEL = "bench-model"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON_HEADERS = [(b"content-type", b"application/json")]
_SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
_REPLY = "Pain spreading to the arm or jaw with sweating needs urgent care: call an ambulance."
_WORDS = ("Please", " call", " your", " doctor", " today", " if", " the", " pain", " returns.")


@dataclass(frozen=True)
class MockConfig:
    """Timing of the fake model: fixed, so any spread in results comes from the system."""

    latency_s: float = 0.020  # non-streaming: whole answer after this long
    first_token_s: float = 0.020  # streaming: role + first content chunk after this long
    chunks: int = 32  # streamed content chunks
    chunk_interval_s: float = 0.010  # between two content chunks


def _usage(completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": 57,
        "completion_tokens": completion_tokens,
        "total_tokens": 57 + completion_tokens,
    }


def completion_body(request_id: str, created: int) -> bytes:
    """A ~600-byte chat.completion, shaped like vLLM's (same keys, same nulls)."""
    body = {
        "id": request_id,
        "object": "chat.completion",
        "created": created,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": _REPLY,
                    "refusal": None,
                    "annotations": None,
                    "audio": None,
                    "function_call": None,
                    "tool_calls": [],
                    "reasoning_content": None,
                },
                "logprobs": None,
                "finish_reason": "stop",
                "stop_reason": None,
            }
        ],
        "service_tier": None,
        "system_fingerprint": None,
        "usage": {**_usage(38), "prompt_tokens_details": None},
        "prompt_logprobs": None,
        "kv_transfer_params": None,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _event(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


def chunk_event(head: dict[str, Any], delta: dict[str, Any], finish: str | None) -> bytes:
    """One chat.completion.chunk event, stamped with its send time."""
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    stamp = str(time.perf_counter_ns())
    return _event({**head, "system_fingerprint": stamp, "choices": [choice]})


class MockUpstream:
    """The raw ASGI app; one instance per process."""

    def __init__(self, config: MockConfig) -> None:
        self.config = config
        self._ids = itertools.count()
        cards = [
            {
                "id": MODEL,
                "object": "model",
                "created": 0,
                "owned_by": "vllm",
                "root": MODEL,
                "parent": None,
                "max_model_len": 4096,
                "permission": [],
            }
        ]
        self._models = json.dumps({"object": "list", "data": cards}).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no lifespan work to do
        path, method = scope["path"], scope["method"]
        if path == "/health":
            await _respond(send, 200, b"", [])
        elif path == "/v1/models":
            await _respond(send, 200, self._models, _JSON_HEADERS)
        elif path == "/v1/chat/completions" and method == "POST":
            await self._chat(json.loads(await _read_body(receive)), send)
        else:
            await _respond(send, 404, b'{"error":"not found"}', _JSON_HEADERS)

    async def _chat(self, request: dict[str, Any], send: Send) -> None:
        request_id = f"chatcmpl-{next(self._ids):032x}"
        created = int(time.time())
        if not request.get("stream"):
            await asyncio.sleep(self.config.latency_s)
            await _respond(send, 200, completion_body(request_id, created), _JSON_HEADERS)
            return
        usage = bool((request.get("stream_options") or {}).get("include_usage"))
        await self._stream(send, request_id, created, usage)

    async def _stream(self, send: Send, request_id: str, created: int, usage: bool) -> None:
        """Role chunk + first token after `first_token_s`, then one token per interval."""
        cfg = self.config
        head = {
            "id": request_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": MODEL,
        }
        await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
        await asyncio.sleep(cfg.first_token_s)
        await _body(send, chunk_event(head, {"role": "assistant", "content": ""}, None))
        for i in range(cfg.chunks):
            if i:
                await asyncio.sleep(cfg.chunk_interval_s)
            finish = "stop" if i == cfg.chunks - 1 else None
            await _body(send, chunk_event(head, {"content": _WORDS[i % len(_WORDS)]}, finish))
        if usage:
            await _body(send, _event({**head, "choices": [], "usage": _usage(cfg.chunks)}))
        await _body(send, b"data: [DONE]\n\n", more=False)


async def _read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def _body(send: Send, data: bytes, *, more: bool = True) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": more})


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    length = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + length})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--first-token-ms", type=float, default=20.0)
    parser.add_argument("--chunks", type=int, default=32)
    parser.add_argument("--chunk-interval-ms", type=float, default=10.0)
    args = parser.parse_args()
    config = MockConfig(
        args.latency_ms / 1000,
        args.first_token_ms / 1000,
        args.chunks,
        args.chunk_interval_ms / 1000,
    )

    import uvicorn

    uvicorn.run(
        MockUpstream(config),
        host="127.0.0.1",  # loopback only, always
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        backlog=4096,
        timeout_graceful_shutdown=2,
    )


if __name__ == "__main__":
    main()
