"""The patient-context stage: a FHIR record sent with a chat request, as a summary the model
reads in its system prompt.

`"clinical": {"fhir": ...}` carries FHIR R4 resources (a Bundle, a resource, a list, or an
object keyed by resource type; see `server.fhir.resources`). They are validated, reduced to
the minimum necessary (`server.fhir.reduce`: age and sex rather than name and identifiers,
current problems, medications and allergies, recent vitals and labs) and rendered as a
dated, delimited block within the deployment's token budget (`server.fhir.render`).

The raw resources go no further than this stage: `upstream_body` drops the whole `clinical`
object before the worker sees the request, the audit row's prompt is the client's messages
only, and the response's `clinical.patient_context` holds counts, never content. Parsing a
large Bundle takes CPU time (fhir.resources validation, about a millisecond a resource), so
the work runs in a thread, off the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from server.errors import InvalidRequest
from server.fhir.reduce import summarize
from server.fhir.render import RenderedSummary, render
from server.fhir.resources import parse_resources
from server.fhir.summary import PatientSummary
from server.pipeline.prompt import with_system_note
from server.settings import FhirSettings

PARAM = "clinical.fhir"


def utc_today() -> date:
    return datetime.now(UTC).date()


@dataclass(frozen=True)
class PatientContextOutcome:
    messages: list[dict[str, Any]]
    resources: int = 0  # how many the request carried (Bundles opened)
    summary: PatientSummary | None = None
    rendered: RenderedSummary | None = None
    skipped: str | None = None  # why no summary went in although a record was sent

    def extension(self) -> dict[str, Any] | None:
        """The response's `clinical.patient_context`: counts only (None without a record)."""
        if self.skipped is not None:
            return {"resources": self.resources, "skipped": self.skipped}
        if self.summary is None or self.rendered is None:
            return None
        summary = self.summary
        return {
            "resources": self.resources,
            "problems": len(summary.problems),
            "medications": len(summary.medications),
            "allergies": len(summary.allergies),
            "vitals": len(summary.vitals),
            "labs": len(summary.labs),
            "left_out": sum(self.rendered.left_out.values()),  # for the token budget
            "dropped": dict(summary.dropped),  # not current, by resource type
            "tokens": self.rendered.tokens,
        }


def requested_fhir(options: Any, settings: FhirSettings) -> Any:
    """The request's `clinical.fhir` payload, None without one; refused (400) when patient
    context is switched off, rather than silently answered without the record."""
    payload = options.get("fhir") if isinstance(options, dict) else None
    if payload is not None and not settings.enabled:
        raise InvalidRequest(
            "Patient context (clinical.fhir) is switched off on this gateway.", param=PARAM
        )
    return payload


class PatientContextStage:
    def __init__(self, settings: FhirSettings, today: Callable[[], date] = utc_today) -> None:
        """`today` dates the summary and anchors ages and the lab lookback."""
        self.settings = settings
        self.today = today

    async def run(self, messages: list[dict[str, Any]], payload: Any) -> PatientContextOutcome:
        if payload is None:
            return PatientContextOutcome(messages)
        return await asyncio.to_thread(self._prepare, messages, payload)

    def _prepare(self, messages: list[dict[str, Any]], payload: Any) -> PatientContextOutcome:
        settings = self.settings
        resources = parse_resources(payload, PARAM, max_resources=settings.max_resources)
        summary = summarize(resources, today=self.today(), lookback_days=settings.lab_lookback_days)
        if _empty(summary):
            return PatientContextOutcome(messages, len(resources), skipped="no patient data")
        rendered = render(summary, settings.budget_tokens)
        updated = with_system_note(messages, rendered.text)
        return PatientContextOutcome(updated, len(resources), summary, rendered)


def _empty(summary: PatientSummary) -> bool:
    """Nothing the model could use: no age or sex and no clinical item (a record of only
    Practitioners, say). A block saying "none recorded" would then mislead."""
    return (
        summary.age_years is None
        and summary.sex is None
        and not any(
            (summary.problems, summary.medications, summary.allergies, summary.vitals, summary.labs)
        )
    )
