"""What one request did, gathered as it runs, for its audit row.

The stages fill in a `RequestFacts` (owned by the request, never shared) and the audit step
reads it once when the response has gone out. Only digests, counts, ids and labels are kept
for the audit row itself; the texts ride along solely so a tenant that turned on content
retention can have them stored, and are dropped for everyone else.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


def canonical_json(value: Any) -> str:
    """One spelling per value (sorted keys, no spaces, UTF-8), so equal prompts hash equal."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class RequestFacts:
    model: str | None = None
    adapter: str | None = None
    completion_id: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_text: str | None = None  # canonical JSON of what the client sent (messages/input)
    response_text: str | None = None
    citations: list[str] = field(default_factory=list)
    intake_mode: str | None = None
    intake_subcategories: list[str] = field(default_factory=list)
    red_flags: list[str] = field(default_factory=list)
    limit_headers: list[tuple[bytes, bytes]] = field(default_factory=list)  # x-ratelimit-*

    def set_prompt(self, value: Any) -> None:
        self.prompt_text = value if isinstance(value, str) else canonical_json(value)

    def set_usage(self, usage: object) -> None:
        if isinstance(usage, dict):
            prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
            self.prompt_tokens = prompt if isinstance(prompt, int) else self.prompt_tokens
            self.completion_tokens = (
                completion if isinstance(completion, int) else self.completion_tokens
            )

    @property
    def total_tokens(self) -> int | None:
        if self.prompt_tokens is None and self.completion_tokens is None:
            return None
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0)

    @property
    def prompt_sha256(self) -> str | None:
        return sha256_hex(self.prompt_text) if self.prompt_text is not None else None

    @property
    def response_sha256(self) -> str | None:
        return sha256_hex(self.response_text) if self.response_text is not None else None


def choice_text(body: dict[str, Any]) -> str | None:
    """The answer's text in a non-streamed response (chat or text completion), choices
    joined in order; tool calls are recorded as their JSON."""
    choices = body.get("choices")
    if not isinstance(choices, list):
        return None
    parts: list[str] = []
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        message = choice.get("message")
        if isinstance(message, dict):
            if isinstance(message.get("content"), str):
                parts.append(message["content"])
            if message.get("tool_calls"):
                parts.append(canonical_json(message["tool_calls"]))
        elif isinstance(choice.get("text"), str):
            parts.append(choice["text"])
    return "".join(parts)
