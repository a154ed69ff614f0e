"""The SSE relay, unit-tested on hand-made byte streams."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from server.errors import WorkerFailed
from server.pipeline.stream import StreamSummary, relay


def event(data: dict[str, object]) -> bytes:
    return b"data: " + json.dumps(data).encode() + b"\n\n"


HEAD = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
CHUNKS = [
    event({**HEAD, "choices": [{"index": 0, "delta": {"content": "a"}}]}),
    event({**HEAD, "choices": [{"index": 0, "delta": {"content": "b"}}]}),
    event({**HEAD, "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}),
    b"data: [DONE]\n\n",
]


async def feed(parts: list[bytes], fail: bool = False) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
    if fail:
        raise WorkerFailed("broke")


async def run(
    parts: list[bytes], drop_usage: bool, fail: bool = False
) -> tuple[bytes, StreamSummary]:
    summary = StreamSummary()
    out = b"".join(
        [
            e
            async for e in relay(
                feed(parts, fail), summary, drop_usage_chunk=drop_usage,
                final_extension=lambda: {"request_id": "r"},
            )
        ]
    )  # fmt: skip
    return out, summary


async def test_events_are_forwarded_byte_for_byte_even_when_split() -> None:
    raw = b"".join(CHUNKS)
    pieces = [raw[i : i + 7] for i in range(0, len(raw), 7)]
    out, summary = await run(pieces, drop_usage=False)
    ours = event({**HEAD, "choices": [], "clinical": {"request_id": "r"}})
    assert out.startswith(b"".join(CHUNKS[:3]))
    assert out.endswith(b"data: [DONE]\n\n")
    assert json.loads(out.split(b"\n\n")[3][6:]) == json.loads(ours[6:])
    assert summary.usage == {"prompt_tokens": 3, "completion_tokens": 2}


async def test_usage_chunk_is_dropped_when_only_the_gateway_asked() -> None:
    out, summary = await run(CHUNKS, drop_usage=True)
    assert b'"usage"' not in out and summary.usage is not None


async def test_failure_after_first_byte_becomes_an_error_event() -> None:
    out, summary = await run(CHUNKS[:1], drop_usage=True, fail=True)
    events = [e for e in out.split(b"\n\n") if e]
    assert json.loads(events[1][6:])["error"]["code"] == 502
    assert events[-1] == b"data: [DONE]" and summary.error is not None
