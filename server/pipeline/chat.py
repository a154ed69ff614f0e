"""The request path for chat and text completions, top to bottom.

    validate -> intake (analysis, note or correction, red flags) -> retrieval (cited
             guideline passages) -> admission -> worker pool -> answer (+ `clinical`
             extension) -> metrics

Each stage is a plain object built once at start-up; nothing here knows about HTTP, so
tests drive the path directly and the routes stay thin.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Literal

from server.admission import Admission
from server.metrics import Metrics
from server.pipeline.intake import IntakeOutcome, IntakeStage, requested_intake
from server.pipeline.retrieval import (
    RetrievalOutcome,
    RetrievalStage,
    requested_retrieval,
)
from server.pipeline.stream import StreamSummary, relay
from server.pipeline.validation import validate
from server.protocol import ChatCompletionRequest, CompletionRequest, upstream_body
from server.workers.upstream import Upstream, UpstreamReply, UpstreamStream

Route = Literal["chat", "completions"]

_ROUTES: dict[Route, tuple[str, type[ChatCompletionRequest] | type[CompletionRequest]]] = {
    "chat": ("/v1/chat/completions", ChatCompletionRequest),
    "completions": ("/v1/completions", CompletionRequest),
}


@dataclass(frozen=True)
class RequestContext:
    request_id: str
    received: float  # time.perf_counter() when the request arrived


@dataclass(frozen=True)
class Prepared:
    """What the stages before the worker decided, for the response's `clinical` object."""

    intake: IntakeOutcome
    retrieval: RetrievalOutcome


@dataclass(frozen=True)
class Answer:
    """A complete JSON answer."""

    model: str
    body: dict[str, Any]


@dataclass(frozen=True)
class StreamedAnswer:
    """An answer whose events are produced as the worker generates them.

    Whoever receives it must call `aclose()` when done, iterated or not: a client can leave
    before the first event is pulled, and an unstarted generator never runs its cleanup.
    """

    model: str
    events: AsyncGenerator[bytes, None]
    aclose: Callable[[], Awaitable[None]]


class CompletionPipeline:
    def __init__(
        self,
        intake: IntakeStage,
        retrieval: RetrievalStage,
        upstream: Upstream,
        admission: Admission,
        metrics: Metrics,
    ) -> None:
        self.intake = intake
        self.retrieval = retrieval
        self.upstream = upstream
        self.admission = admission
        self.metrics = metrics

    async def run(
        self, route: Route, body: Any, context: RequestContext
    ) -> Answer | StreamedAnswer:
        path, schema = _ROUTES[route]
        request = validate(schema, body)
        outgoing = upstream_body(body)
        options = body.get("clinical")
        wanted = requested_intake(options, self.intake.settings)
        wanted_passages = requested_retrieval(options, self.retrieval.settings)
        # Text completions carry no patient turn: neither stage applies to them.
        prepared = Prepared(IntakeOutcome("off", []), RetrievalOutcome([]))
        if route == "chat":
            intake = await self.intake.run(outgoing["messages"], wanted)
            passages = await self.retrieval.run(intake.messages, intake, wanted_passages)
            prepared = Prepared(intake, passages)
            outgoing["messages"] = passages.messages
        client_wants_usage = bool(request.stream_options and request.stream_options.include_usage)
        if request.stream and not client_wants_usage:
            # Ask for usage on our own account (token metrics); the relay drops that chunk.
            outgoing["stream_options"] = {
                **outgoing.get("stream_options", {}),
                "include_usage": True,
            }

        resources = AsyncExitStack()
        await resources.enter_async_context(self.admission.slot())
        try:
            reply = await self.upstream.post(path, outgoing, request.model, stream=request.stream)
        except BaseException:
            await resources.aclose()
            raise
        if isinstance(reply, UpstreamReply):
            await resources.aclose()
            return self._complete(route, request.model, reply, context, prepared)

        async def release() -> None:
            await reply.aclose()
            await resources.aclose()

        events = self._stream(
            route, request.model, reply, context, prepared, release, client_wants_usage
        )
        return StreamedAnswer(request.model, events, release)

    def _complete(
        self,
        route: Route,
        model: str,
        reply: UpstreamReply,
        context: RequestContext,
        prepared: Prepared,
    ) -> Answer:
        reply.body["clinical"] = self._extension(context, prepared)
        self.metrics.record_usage(model, reply.body.get("usage"))
        total = time.perf_counter() - context.received
        self.metrics.overhead.labels(route).observe(max(total - reply.upstream_s, 0.0))
        return Answer(model, reply.body)

    async def _stream(
        self,
        route: Route,
        model: str,
        stream: UpstreamStream,
        context: RequestContext,
        prepared: Prepared,
        release: Callable[[], Awaitable[None]],
        client_wants_usage: bool,
    ) -> AsyncGenerator[bytes, None]:
        summary = StreamSummary()
        first = True
        try:
            async for event in relay(
                stream.chunks(),
                summary,
                drop_usage_chunk=not client_wants_usage,
                final_extension=lambda: self._extension(context, prepared),
            ):
                if first:
                    first = False
                    self.metrics.ttft.labels(model).observe(time.perf_counter() - context.received)
                yield event
        finally:
            await release()
            self.metrics.record_usage(model, summary.usage)
            total = time.perf_counter() - context.received
            self.metrics.overhead.labels(route).observe(max(total - stream.upstream_s, 0.0))

    def _extension(self, context: RequestContext, prepared: Prepared) -> dict[str, Any]:
        """The `clinical` object; the adapter fills in when its stage lands."""
        return {
            "request_id": context.request_id,
            "adapter": None,
            "intake": prepared.intake.extension(),
            "retrieval": prepared.retrieval.extension(),
            "citations": prepared.retrieval.citations(self.retrieval.settings.snippet_chars),
            "red_flags": prepared.intake.red_flags(),
        }
