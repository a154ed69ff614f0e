"""The OpenAI-compatible routes: `/v1/models`, `/v1/chat/completions`, `/v1/completions`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from server.errors import InvalidRequest, PayloadTooLarge
from server.pipeline.chat import Answer, RequestContext, Route, StreamedAnswer
from server.routes.deps import GatewayDep

router = APIRouter()
T = TypeVar("T")


class ClientGone(Exception):
    """The client disconnected while the worker was still working on its answer."""


@router.get("/v1/models")
async def list_models(gateway: GatewayDep) -> dict[str, Any]:
    """What the workers serve, plus each adapter alias clients may ask for by name."""
    aliases = [alias.card() for alias in gateway.reconciler.router.aliases.values()]
    cards = [card for card in aliases if card is not None]
    return {"object": "list", "data": gateway.pool.model_cards() + cards}


@router.post("/v1/chat/completions")
async def chat_completions(request: Request, gateway: GatewayDep) -> Response:
    return await _complete("chat", request, gateway)


@router.post("/v1/completions")
async def completions(request: Request, gateway: GatewayDep) -> Response:
    return await _complete("completions", request, gateway)


async def _complete(route: Route, request: Request, gateway: GatewayDep) -> Response:
    body = await read_json_body(request, gateway.settings.limits.max_body_bytes)
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        request.state.model = body["model"]
    state = request.state
    principal = state.principal
    context = RequestContext(
        state.request_id,
        state.received,
        state.facts,
        gateway.caller(principal),
        principal.intake_mode,
        principal.end_user,
    )
    try:
        answer = await _unless_disconnected(request, gateway.pipeline.run(route, body, context))
    except ClientGone:
        return Response(status_code=499)
    if isinstance(answer, StreamedAnswer):
        return _EventStream(answer)
    assert isinstance(answer, Answer)
    return JSONResponse(answer.body)


class _EventStream(StreamingResponse):
    """Server-sent events that release the worker and the slot however the stream ends."""

    def __init__(self, answer: StreamedAnswer) -> None:
        super().__init__(
            answer.events,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self.answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.answer.events.aclose()
            await self.answer.aclose()


async def read_json_body(request: Request, limit: int) -> Any:
    """The body as JSON, refusing it (413) as soon as it grows past `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    raw = bytearray()
    async for part in request.stream():
        raw += part
        if len(raw) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    try:
        return json.loads(raw)
    except ValueError:
        raise InvalidRequest("The request body is not valid JSON.") from None


async def _unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await `work` in this task, cancelling it (and so the upstream request) if the client
    hangs up. One watcher task per request, no `asyncio.wait`: this is on the hot path."""
    handler = asyncio.current_task()
    assert handler is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        while (await request.receive())["type"] != "http.disconnect":
            pass
        gone = True
        handler.cancel()

    watcher = asyncio.create_task(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if gone:
            handler.uncancel()  # the cancellation was ours; the task itself carries on
            raise ClientGone from None
        raise
    finally:
        watcher.cancel()
