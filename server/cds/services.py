"""The service catalogue: what `GET /cds-services` announces, and what each call needs.

Prefetch templates ask for the minimum the cards use: active problems, active medication
orders, allergies and, for patient-view, recent vital signs and labs (newest first, one
bounded page each: the red-flag rules only look at the latest values). The Patient read is
there for age and sex and to check that prefetched data is about the patient in context;
its name and identifiers are dropped by `server.fhir.reduce` before anything else sees the
record. Every template is a relative FHIR query (no host), so a fetch can only ever go to
the `fhirServer` the request names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.cds.models import OrderSignContext, PatientViewContext

PATIENT = "Patient/{{context.patientId}}"
CONDITIONS = "Condition?patient={{context.patientId}}&clinical-status=active"
MEDICATIONS = "MedicationRequest?patient={{context.patientId}}&status=active"
ALLERGIES = "AllergyIntolerance?patient={{context.patientId}}"
VITALS = "Observation?patient={{context.patientId}}&category=vital-signs&_sort=-date&_count=50"
LABS = "Observation?patient={{context.patientId}}&category=laboratory&_sort=-date&_count=100"


@dataclass(frozen=True)
class Service:
    id: str
    hook: str
    title: str
    description: str
    prefetch: dict[str, str]
    context: type[PatientViewContext]

    def to_json(self) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "prefetch": dict(self.prefetch),
            "usageRequirements": "Needs the prefetch data (or fhirServer with a "
            "fhirAuthorization that can read it).",
        }


SERVICES: tuple[Service, ...] = (
    Service(
        id="patient-view",
        hook="patient-view",
        title="clinserve chart review",
        description="On opening a chart: red flags in recent vital signs and labs, and "
        "guideline passages for each active problem, cited.",
        prefetch={
            "patient": PATIENT,
            "conditions": CONDITIONS,
            "medications": MEDICATIONS,
            "allergies": ALLERGIES,
            "vitals": VITALS,
            "labs": LABS,
        },
        context=PatientViewContext,
    ),
    Service(
        id="order-sign",
        hook="order-sign",
        title="clinserve medication order check",
        description="On signing medication orders: allergy and cross-reactivity conflicts, "
        "duplicate therapy and well-known interactions with current medications, with the "
        "guideline passages that apply.",
        prefetch={
            "patient": PATIENT,
            "conditions": CONDITIONS,
            "medications": MEDICATIONS,
            "allergies": ALLERGIES,
        },
        context=OrderSignContext,
    ),
)


def find(service_id: str) -> Service | None:
    return next((service for service in SERVICES if service.id == service_id), None)


def discovery() -> dict[str, Any]:
    return {"services": [service.to_json() for service in SERVICES]}
