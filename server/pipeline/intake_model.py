"""How the gateway's `model` and `hybrid` intake engines ask the served model.

Through the same worker pool and admission control as a chat request, so an intake call
is load-balanced, retried before its first byte and bounded like any other; but straight
to a worker, never back through the gateway's own pipeline (no intake of the intake).
"""

from __future__ import annotations

from typing import Any

from perturbation.model_client import reply_text, request_body
from perturbation.model_engine import Completer
from server.admission import Admission
from server.workers.upstream import Upstream, UpstreamReply


def pool_completer(
    upstream: Upstream, admission: Admission, model: str | None, max_tokens: int
) -> Completer:
    """`model` None: whichever base model the pool serves at the time of the call."""

    async def complete(messages: list[dict[str, str]], schema: dict[str, Any]) -> str:
        name = model or upstream.pool.base_model()
        body = request_body(name, messages, schema, max_tokens)
        async with admission.slot():
            reply = await upstream.post("/v1/chat/completions", body, name, stream=False)
        assert isinstance(reply, UpstreamReply)  # stream=False answers in one piece
        return reply_text(reply.body)

    return complete
