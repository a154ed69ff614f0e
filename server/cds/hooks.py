"""The CDS Hooks services as one object the route calls: validate, gather data, make cards.

`parse` checks a call against its service (the hook must be the service's, the context the
hook's) and `run` resolves the prefetch data (supplied, else fetched from the EMR's FHIR
server), reads it with `server.fhir` into the minimum-necessary `PatientSummary`, and hands
that to the hook's card maker. Nothing here knows HTTP frameworks; errors are the gateway's
typed errors (400 malformed, 404 unknown service, 412 data unobtainable).

What leaves this module for the audit trail is `describe`: the hook, its instance id, which
prefetch keys were supplied or fetched and how many resources each held. Never a resource's
content, and never the patient's id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx

from retrieval.search import Retriever
from server.cds.cards import CardLimits, HookCards
from server.cds.drugs import DrugTable
from server.cds.models import CdsResponse, HookRequest, OrderSignContext, PatientViewContext
from server.cds.order_sign import DraftOrder, OrderSign
from server.cds.patient_view import PatientView
from server.cds.prefetch import FhirFetcher, PrefetchUnavailable, Resolved, fhir_server
from server.cds.services import Service, discovery, find
from server.cds.thresholds import load_thresholds
from server.errors import InvalidRequest, ObjectNotFound, PreconditionFailed
from server.fhir.reduce import medication_orders, summarize
from server.fhir.resources import parse_resources
from server.fhir.subject import patient_key
from server.pipeline.validation import validate
from server.settings import CdsSettings, FhirSettings, RetrievalSettings


def utc_today() -> date:
    return datetime.now(UTC).date()


@dataclass(frozen=True)
class HookCall:
    service: Service
    request: HookRequest
    context: PatientViewContext

    def describe(
        self, resolved: Resolved | None = None, counts: dict[str, int] | None = None
    ) -> dict[str, Any]:
        """The PHI-free account of the call that the audit row hashes (and may keep)."""
        supplied = sorted((self.request.prefetch or {}).keys() & self.service.prefetch.keys())
        account: dict[str, Any] = {
            "service": self.service.id,
            "hook": self.service.hook,
            "hookInstance": str(self.request.hookInstance),
            "prefetch_supplied": supplied,
            "fhir_server": self.request.fhirServer is not None,
        }
        if resolved is not None:
            account["prefetch_fetched"] = list(resolved.fetched)
        if counts is not None:
            account["resources"] = counts
        return account


@dataclass(frozen=True)
class HookOutcome:
    response: dict[str, Any]
    cards: HookCards
    description: dict[str, Any]


class CdsHooks:
    def __init__(
        self,
        settings: CdsSettings,
        retrieval: RetrievalSettings,
        fhir: FhirSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        today: Callable[[], date] = utc_today,
    ) -> None:
        self.settings = settings
        self.fhir = fhir
        self.drugs = DrugTable.load()
        self.fetcher = FhirFetcher(settings, transport)
        self.today = today
        limits = CardLimits(
            settings.max_cards, settings.passages_per_card, retrieval.snippet_chars, retrieval.mode
        )
        self.patient_view = PatientView(self.drugs, load_thresholds(), limits)
        self.order_sign = OrderSign(self.drugs, limits)

    def discovery(self) -> dict[str, Any]:
        return discovery()

    def service(self, service_id: str) -> Service:
        service = find(service_id)
        if service is None:
            raise ObjectNotFound("No CDS service with that id (see GET /cds-services).")
        return service

    def parse(self, service: Service, body: Any) -> HookCall:
        request = validate(HookRequest, body)
        if request.hook != service.hook:
            raise InvalidRequest(
                f"hook: this service answers {service.hook}, not {request.hook}.", param="hook"
            )
        try:
            context = validate(service.context, request.context)
        except InvalidRequest as exc:  # name the field by its path in the request body
            param = f"context.{exc.param}" if exc.param else "context"
            raise InvalidRequest(f"context.{exc.message}", param=param) from None
        return HookCall(service, request, context)

    async def run(self, call: HookCall, retriever: Retriever | None) -> HookOutcome:
        """Everything the client sent is checked (400) before the FHIR server is asked."""
        request, context = call.request, call.context
        server = None
        if request.fhirServer is not None and request.fhirAuthorization is not None:
            token = request.fhirAuthorization.access_token.get_secret_value()
            server = fhir_server(request.fhirServer, token, self.settings)
        drafts = None
        if isinstance(context, OrderSignContext):
            drafts = self._draft_orders(context.draftOrders, context.patientId)
        templates = call.service.prefetch
        supplied = {k: v for k, v in (request.prefetch or {}).items() if k in templates}
        records = {k: self._read(k, v, context.patientId, False) for k, v in supplied.items()}
        try:
            resolved = await self.fetcher.resolve(templates, context.model_dump(), supplied, server)
        except PrefetchUnavailable as exc:
            raise PreconditionFailed(f"The record could not be obtained: {exc}.") from None
        for key in resolved.fetched:
            records[key] = self._read(key, resolved.data[key], context.patientId, True)
        resources = [resource for found in records.values() for resource in found]
        counts = {key: len(found) for key, found in sorted(records.items())}
        today = self.today()
        summary = summarize(resources, today=today, lookback_days=self.fhir.lab_lookback_days)
        if drafts is not None:
            counts["draftOrders"] = len(drafts)
            cards = await self.order_sign.cards(summary, drafts, retriever)
        else:
            cards = await self.patient_view.cards(summary, retriever, today)
        response = CdsResponse(cards=list(cards.cards)).to_json()
        return HookOutcome(response, cards, call.describe(resolved, counts))

    def _read(self, key: str, value: Any, patient_id: str, fetched: bool) -> list[Any]:
        """One prefetch key's resources, validated (None: the spec's "no data"). Invalid
        FHIR the client supplied is its 400; invalid FHIR the server sent is a 412."""
        if value is None:
            return []
        param = f"prefetch.{key}"
        try:
            found = parse_resources(value, param, max_resources=self.fhir.max_resources)
        except InvalidRequest:
            if fetched:
                raise PreconditionFailed(
                    f"The FHIR server's answer for {key} is not valid FHIR R4 or holds more "
                    f"than {self.fhir.max_resources} resources."
                ) from None
            raise
        _check_patient(param, found, patient_id, fetched=fetched)
        return found

    def _draft_orders(self, bundle: dict[str, Any], patient_id: str) -> list[DraftOrder]:
        """The draft MedicationRequests, each with its id (other draft orders, such as a
        ServiceRequest, are not this service's to check)."""
        param = "context.draftOrders"
        resources = parse_resources(bundle, param, max_resources=self.fhir.max_resources)
        _check_patient(param, resources, patient_id, fetched=False)
        requests = [r for r in resources if r.get_resource_type() == "MedicationRequest"]
        return [
            DraftOrder(medication, request.id)
            for medication, request in zip(medication_orders(resources), requests, strict=True)
        ]


def _check_patient(param: str, resources: list[Any], patient_id: str, *, fetched: bool) -> None:
    """Every resource must be about the patient in context (a Patient by its id, the rest by
    their `Patient/<id>` subject or patient reference): a card about the wrong patient is
    the worst thing this service could return. `server.fhir` already refused a payload that
    mixes two patients; this ties each one to `context.patientId`."""
    for resource in resources:
        if _about(resource) not in (None, patient_id):
            if fetched:
                raise PreconditionFailed("The FHIR server returned another patient's data.")
            raise InvalidRequest(
                f"{param}: holds data about another patient than context.patientId.",
                param=param,
            )


def _about(resource: Any) -> str | None:
    if resource.get_resource_type() == "Patient":
        return str(resource.id) if resource.id else None
    for field in ("subject", "patient"):
        reference = getattr(getattr(resource, field, None), "reference", None)
        if isinstance(reference, str) and not reference.startswith("urn:"):
            return patient_key(reference)
    return None
