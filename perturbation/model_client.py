"""A `Completer` over HTTP: ask any OpenAI-compatible server (a clinserve gateway, a vLLM
worker) for the intake JSON. Used by `clinserve intake --engine model|hybrid`; the gateway
itself goes through its worker pool instead.

The request asks for `response_format: json_schema` (strict), temperature 0, and, for a
clinserve gateway, `clinical.intake: off` so the gateway does not analyse the analysis
request itself (vLLM ignores the unknown field).
"""

from __future__ import annotations

from typing import Any

import aiohttp

from perturbation.model_engine import Completer, ModelEngineError


def request_body(
    model: str, messages: list[dict[str, str]], schema: dict[str, Any], max_tokens: int
) -> dict[str, Any]:
    """The chat-completions body both transports send."""
    return {
        "model": model,
        "messages": messages,
        "temperature": 0,
        "max_tokens": max_tokens,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "intake_analysis", "schema": schema, "strict": True},
        },
    }


def reply_text(body: Any) -> str:
    """The assistant's text from a chat-completions answer, or ModelEngineError."""
    try:
        choice = body["choices"][0]
        content = choice["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise ModelEngineError("the answer has no message content") from exc
    if not isinstance(content, str):
        raise ModelEngineError("the answer has no message content")
    if choice.get("finish_reason") == "length":
        raise ModelEngineError("the model ran out of tokens before finishing the JSON")
    return content


def http_completer(
    base_url: str, model: str, api_key: str | None, timeout_s: float, max_tokens: int
) -> Completer:
    """A Completer that POSTs to `{base_url}/chat/completions` (base_url ends in /v1)."""
    url = base_url.rstrip("/") + "/chat/completions"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    async def complete(messages: list[dict[str, str]], schema: dict[str, Any]) -> str:
        body = request_body(model, messages, schema, max_tokens)
        body["clinical"] = {"intake": "off"}
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.post(url, json=body, headers=headers) as response:
                if response.status != 200:
                    detail = (await response.text())[:300]
                    raise ModelEngineError(f"{url} answered {response.status}: {detail}")
                return reply_text(await response.json(content_type=None))

    return complete
