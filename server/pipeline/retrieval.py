"""The retrieval stage: guideline passages for the patient's latest message, as cited context.

The query is the intake's corrected text without the patient's asides (irrelevant details,
emotional framing) plus the chief complaint's present terms, so correction helps retrieval
("feaver" finds the fever guideline); without an analysis it is the message as written.
Passages go into the system prompt as delimited reference material
(`server.pipeline.references`) and come back to the client as `clinical.citations`,
numbered as the model was told to cite them. Per request: `"clinical": {"retrieval":
false}` turns it off, `{"retrieval": {"k": 3, "mode": "bm25"}}` tunes it.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

from retrieval.query import build_query, query_from_intake
from retrieval.search import MODES, Hit, Mode
from server.errors import InvalidRequest
from server.guidelines import GuidelineLibrary
from server.pipeline.intake import IntakeOutcome, last_user_text
from server.pipeline.prompt import with_system_note
from server.pipeline.references import reference_block, within_budget
from server.pipeline.validation import one_of, only_fields
from server.settings import RetrievalSettings

_MAX_K = 20


@dataclass(frozen=True)
class RetrievalRequest:
    enabled: bool
    k: int
    mode: Mode


@dataclass(frozen=True)
class RetrievalOutcome:
    messages: list[dict[str, Any]]
    hits: list[Hit] = field(default_factory=list)
    request: RetrievalRequest | None = None
    skipped: str | None = None

    def citations(self, snippet_chars: int) -> list[dict[str, Any]]:
        return [
            {
                "index": number,
                "id": hit.chunk.id,
                "title": hit.chunk.title,
                "section": hit.chunk.section,
                "source": hit.chunk.source,
                "version": hit.chunk.version,
                "url": hit.chunk.url,
                "score": round(hit.score, 4),
                "snippet": hit.to_json(snippet_chars)["text"],
            }
            for number, hit in enumerate(self.hits, start=1)
        ]

    def extension(self) -> dict[str, Any] | None:
        """The response's `clinical.retrieval`: what was asked, or why nothing was."""
        if self.request is None or not self.request.enabled:
            return None
        if self.skipped is not None:
            return {"skipped": self.skipped}
        return {"k": self.request.k, "mode": self.request.mode, "passages": len(self.hits)}


def requested_retrieval(options: Any, settings: RetrievalSettings) -> RetrievalRequest:
    default = RetrievalRequest(settings.enabled, settings.k, settings.mode)
    value = options.get("retrieval", True) if isinstance(options, dict) else True
    if value is True:
        return default
    if value is False:
        return RetrievalRequest(False, default.k, default.mode)
    if not isinstance(value, dict):
        raise InvalidRequest(
            "clinical.retrieval must be true, false or an object.", param="clinical.retrieval"
        )
    only_fields(value, {"k", "mode"}, "clinical.retrieval")
    k = value.get("k", default.k)
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= _MAX_K:
        raise InvalidRequest(
            f"clinical.retrieval.k must be an integer from 1 to {_MAX_K}.",
            param="clinical.retrieval.k",
        )
    mode = one_of(value.get("mode", default.mode), MODES, "clinical.retrieval.mode")
    return RetrievalRequest(default.enabled, k, mode)


def retrieval_query(messages: list[dict[str, Any]], intake: IntakeOutcome) -> str:
    """From the analysis when there is one: corrected, without asides, plus present terms."""
    if intake.analysis is not None:
        return query_from_intake(intake.analysis)
    return build_query(last_user_text(messages) or "")


class RetrievalStage:
    def __init__(self, library: GuidelineLibrary, settings: RetrievalSettings) -> None:
        self.library = library
        self.settings = settings

    async def run(
        self, messages: list[dict[str, Any]], intake: IntakeOutcome, request: RetrievalRequest
    ) -> RetrievalOutcome:
        if not request.enabled:
            return RetrievalOutcome(messages, request=request)
        retriever = self.library.retriever  # taken once: a swap mid-request cannot split it
        if retriever is None:
            return RetrievalOutcome(messages, request=request, skipped=self.library.status)
        query = retrieval_query(messages, intake)
        if not query.strip():
            return RetrievalOutcome(messages, request=request, skipped="no user text")
        found = await asyncio.to_thread(retriever.search, query, request.k, request.mode)
        hits = within_budget(found, self.settings.max_context_tokens)
        if not hits:
            return RetrievalOutcome(messages, request=request)
        block = reference_block(hits, secrets.token_hex(4))
        return RetrievalOutcome(with_system_note(messages, block), hits, request)
