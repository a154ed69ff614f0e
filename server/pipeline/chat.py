"""The request path for chat and text completions, top to bottom.

    validate -> intake (analysis, note or correction, red flags) -> patient context (a FHIR
             record as a dated summary) -> retrieval (cited guideline passages) ->
             admission -> worker pool -> answer (+ `clinical` extension) -> metrics

Each stage is a plain object built once at start-up; nothing here knows about HTTP, so
tests drive the path directly and the routes stay thin.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Literal

from server.adapters.routing import AdapterRouter
from server.admission import Admission
from server.errors import InvalidRequest
from server.metrics import Metrics
from server.pipeline.facts import RequestFacts, choice_text
from server.pipeline.intake import IntakeOutcome, IntakeStage, requested_intake
from server.pipeline.patient_context import (
    PatientContextOutcome,
    PatientContextStage,
    requested_fhir,
)
from server.pipeline.quota import Caller, Quota, estimate_tokens
from server.pipeline.retrieval import (
    RetrievalOutcome,
    RetrievalStage,
    requested_retrieval,
)
from server.pipeline.stream import StreamSummary, relay
from server.pipeline.validation import validate
from server.protocol import ChatCompletionRequest, CompletionRequest, upstream_body
from server.settings import IntakeMode
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
    facts: RequestFacts = field(default_factory=RequestFacts)  # for the audit row
    caller: Caller | None = None  # whose rate limits apply; None: no limits
    intake_mode: IntakeMode | None = None  # the key's default; None: the deployment's
    end_user: str | None = None  # who is behind the key (keeps one canary version per user)


@dataclass(frozen=True)
class Prepared:
    """What the stages before the worker decided, for the response's `clinical` object."""

    intake: IntakeOutcome
    retrieval: RetrievalOutcome
    adapter: str | None = None  # the adapter version that answers, e.g. `med@3`
    patient: PatientContextOutcome | None = None  # the FHIR record's summary, when sent


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
        quota: Quota,
        adapters: AdapterRouter,
        patient_context: PatientContextStage,
        *,
        collect_text: bool = False,
        max_tokens: int | None = None,
    ) -> None:
        """`collect_text`: keep the streamed answer's text for the audit digest (and, for
        tenants that retain content, the record itself). `max_tokens`: the deployment's cap
        on what one request may ask to generate."""
        self.collect_text = collect_text
        self.max_tokens = max_tokens
        self.intake = intake
        self.retrieval = retrieval
        self.upstream = upstream
        self.admission = admission
        self.metrics = metrics
        self.quota = quota
        self.adapters = adapters
        self.patient_context = patient_context

    async def run(
        self, route: Route, body: Any, context: RequestContext
    ) -> Answer | StreamedAnswer:
        path, schema = _ROUTES[route]
        request = validate(schema, body)
        self._check_max_tokens(request)
        facts = context.facts
        facts.model = request.model
        facts.set_prompt(body["messages"] if route == "chat" else body["prompt"])
        outgoing = upstream_body(body)
        options = body.get("clinical")
        wanted = requested_intake(options, self.intake.settings, context.intake_mode)
        wanted_passages = requested_retrieval(options, self.retrieval.settings)
        record = requested_fhir(options, self.patient_context.settings)
        if record is not None and route != "chat":
            raise InvalidRequest(
                "clinical.fhir applies to chat completions only.", param="clinical.fhir"
            )
        client_wants_usage = bool(request.stream_options and request.stream_options.include_usage)
        if request.stream and not client_wants_usage:
            # Ask for usage on our own account (token metrics); the relay drops that chunk.
            outgoing["stream_options"] = {
                **(outgoing.get("stream_options") or {}),
                "include_usage": True,
            }
        # The key's budget first: a refused caller costs no intake, retrieval or worker time.
        budget = getattr(request, "max_completion_tokens", None) or request.max_tokens
        estimate = estimate_tokens(len(facts.prompt_text or ""), budget)
        resources = AsyncExitStack()
        await resources.enter_async_context(self.quota.spend(context.caller, estimate, facts))
        try:
            # Text completions carry no patient turn: neither stage applies to them.
            prepared = Prepared(IntakeOutcome("off", []), RetrievalOutcome([]))
            if route == "chat":
                intake = await self.intake.run(outgoing["messages"], wanted)
                patient = await self.patient_context.run(intake.messages, record)
                passages = await self.retrieval.run(patient.messages, intake, wanted_passages)
                prepared = Prepared(intake, passages, patient=patient)
                outgoing["messages"] = passages.messages
                record_prepared(facts, prepared)
            await resources.enter_async_context(self.admission.slot())
            affinity = context.end_user or request.user or context.request_id
            adapter = self.adapters.resolve(request.model, affinity)
            if adapter is not None:  # the alias becomes the version that answers
                outgoing["model"] = facts.adapter = adapter
                prepared = dataclasses.replace(prepared, adapter=adapter)
                resources.enter_context(self.adapters.hold(adapter))
            target = adapter or request.model
            reply = await self.upstream.post(path, outgoing, target, stream=request.stream)
        except BaseException:
            await resources.aclose()
            raise
        if isinstance(reply, UpstreamReply):
            try:
                return self._complete(route, request.model, reply, context, prepared)
            finally:
                await resources.aclose()

        async def release() -> None:
            await reply.aclose()
            await resources.aclose()

        events = self._stream(
            route, request.model, reply, context, prepared, release, client_wants_usage
        )
        return StreamedAnswer(request.model, events, release)

    def _check_max_tokens(self, request: ChatCompletionRequest | CompletionRequest) -> None:
        """Refuse (400) rather than clamp: a silently shortened clinical answer looks whole."""
        cap = self.max_tokens
        for name in ("max_tokens", "max_completion_tokens"):
            asked = getattr(request, name, None)
            if cap is not None and asked is not None and asked > cap:
                raise InvalidRequest(
                    f"{name} is {asked}; this gateway allows at most {cap}.", param=name
                )

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
        facts = context.facts
        facts.set_usage(reply.body.get("usage"))
        completion_id = reply.body.get("id")
        facts.completion_id = completion_id if isinstance(completion_id, str) else None
        facts.response_text = choice_text(reply.body)
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
                collect_text=self.collect_text,
            ):
                if first:
                    first = False
                    self.metrics.ttft.labels(model).observe(time.perf_counter() - context.received)
                yield event
        finally:
            facts = context.facts  # before release(): settling the key's budget reads it
            facts.set_usage(summary.usage)
            stream_id = summary.header.get("id")
            facts.completion_id = stream_id if isinstance(stream_id, str) else None
            facts.response_text = "".join(summary.text) if self.collect_text else None
            await release()
            self.metrics.record_usage(model, summary.usage)
            total = time.perf_counter() - context.received
            self.metrics.overhead.labels(route).observe(max(total - stream.upstream_s, 0.0))

    def _extension(self, context: RequestContext, prepared: Prepared) -> dict[str, Any]:
        """The `clinical` object (`patient_context` only when the request sent a record)."""
        extension = {
            "request_id": context.request_id,
            "adapter": prepared.adapter,
            "intake": prepared.intake.extension(),
            "retrieval": prepared.retrieval.extension(),
            "citations": prepared.retrieval.citations(self.retrieval.settings.snippet_chars),
            "red_flags": prepared.intake.red_flags(),
        }
        patient = prepared.patient.extension() if prepared.patient else None
        if patient is not None:
            extension["patient_context"] = patient
        return extension


def record_prepared(facts: RequestFacts, prepared: Prepared) -> None:
    """Labels and ids from intake and retrieval, never the patient's words."""
    intake = prepared.intake
    facts.intake_mode = intake.mode
    if intake.analysis is not None:
        found = {finding.subcategory for finding in intake.analysis.perturbations}
        facts.intake_subcategories = sorted(found)
        facts.red_flags = [flag.id for flag in intake.analysis.red_flags]
    facts.citations = [hit.chunk.id for hit in prepared.retrieval.hits]
