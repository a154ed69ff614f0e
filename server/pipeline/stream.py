"""Relay a worker's server-sent events to the client, byte for byte, plus our last chunk.

Events are forwarded exactly as the worker wrote them. Three things are added or removed:
the usage-only chunk the gateway asked for on its own account (for token metrics) is
dropped when the client did not ask for usage; a final chunk carrying the `clinical`
extension is sent just before `data: [DONE]`; and a worker failure after the first byte
becomes an OpenAI-style error event, since the status line has already gone out.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from server.errors import GatewayError, envelope

DONE = b"data: [DONE]"
_SEPARATOR = b"\n\n"


@dataclass
class StreamSummary:
    """What the relay learned on the way, for metrics and the final chunk."""

    header: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, Any] | None = None
    error: GatewayError | None = None
    text: list[str] = field(default_factory=list)  # the answer's pieces, when collected

    def collect(self, data: Any) -> None:
        """Append a chunk's generated text (chat deltas or text-completion pieces)."""
        choices = data.get("choices") if isinstance(data, dict) else None
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            piece = delta.get("content") if isinstance(delta, dict) else choice.get("text")
            if isinstance(piece, str):
                self.text.append(piece)


def _data(event: bytes) -> Any:
    try:
        return json.loads(event.removeprefix(b"data:").strip())
    except ValueError:
        return None


async def relay(
    chunks: AsyncIterator[bytes],
    summary: StreamSummary,
    *,
    drop_usage_chunk: bool,
    final_extension: Callable[[], dict[str, Any]],
    collect_text: bool = False,
) -> AsyncIterator[bytes]:
    buffer = b""
    try:
        async for chunk in chunks:
            buffer += chunk
            *events, buffer = buffer.split(_SEPARATOR)
            out: list[bytes] = []  # one write per upstream read, however many events it held
            for event in events:
                if event == DONE:
                    out.append(_final_chunk(summary, final_extension()))
                    out.append(event + _SEPARATOR)
                    continue
                if collect_text:
                    summary.collect(_data(event))
                if not summary.header:
                    summary.header = _header(_data(event))
                if b'"usage"' in event:
                    data = _data(event)
                    if isinstance(data, dict) and data.get("usage"):
                        summary.usage = data["usage"]
                        if drop_usage_chunk and data.get("choices") == []:
                            continue
                out.append(event + _SEPARATOR)
            if out:
                yield b"".join(out)
    except GatewayError as exc:
        summary.error = exc
        yield (
            b"data: "
            + json.dumps(envelope(exc.message, exc.error_type, int(exc.status))).encode()
            + _SEPARATOR
        )
        yield DONE + _SEPARATOR


def _header(data: Any) -> dict[str, Any]:
    """The fields every chunk of one stream shares, for the chunk the gateway adds."""
    if not isinstance(data, dict):
        return {}
    return {key: data[key] for key in ("id", "object", "created", "model") if key in data}


def _final_chunk(summary: StreamSummary, extension: dict[str, Any]) -> bytes:
    chunk = {**summary.header, "choices": [], "clinical": extension}
    return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + _SEPARATOR
