"""One record, one patient: refuse resources that are about two different people.

A summary that merged two patients' allergies or medications would be worse than none, and
it is an easy mistake for a client that batches requests or concatenates FHIR searches. The
check compares every Patient resource and every patient reference (`subject` of Condition,
Observation, MedicationRequest and MedicationStatement; `patient` of AllergyIntolerance):
all must name the same patient. A Patient is known by its id and by its Bundle entry's
fullUrl (transaction Bundles reference `urn:uuid:` fullUrls); a reference names
`Patient/<id>` (relative, absolute or versioned) or such a fullUrl. References to anything
else (a Group, a contained resource) are not patient references and are not compared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.resource import Resource

from server.errors import InvalidRequest

_PATIENT_FIELD = {
    "Condition": "subject",
    "Observation": "subject",
    "MedicationRequest": "subject",
    "MedicationStatement": "subject",
    "AllergyIntolerance": "patient",
}


@dataclass(frozen=True)
class Located:
    """A validated resource, where the request had it, and its Bundle entry's fullUrl."""

    param: str
    full_url: str | None
    resource: Resource


def patient_key(reference: str | None) -> str | None:
    """The patient a reference names: `Patient/7`, `https://x/fhir/Patient/7/_history/2`
    -> "7"; `urn:uuid:ab-12` -> "ab-12"; anything else -> None.

    >>> patient_key("https://ehr.example/fhir/Patient/7/_history/2"), patient_key("Group/1")
    ('7', None)
    """
    if not reference:
        return None
    if reference.startswith("urn:uuid:"):
        return reference.removeprefix("urn:uuid:")
    head, found, tail = reference.rpartition("Patient/")
    if not found or (head and not head.endswith("/")):
        return None
    return tail.split("/", 1)[0] or None


def check_one_patient(located: Sequence[Located]) -> None:
    """Raise `InvalidRequest` (400) at the first resource about a second patient."""
    known: set[str] = set()  # every name the one patient has been given so far
    seen_patient = False
    for item in located:
        resource = item.resource
        if isinstance(resource, Patient):
            names = {name for name in (resource.id, patient_key(item.full_url)) if name}
            if (known and names.isdisjoint(known)) or (seen_patient and not names):
                _refuse(item, "is another Patient than the rest of the record")
            known |= names
            seen_patient = True
            continue
        field = _PATIENT_FIELD.get(resource.get_resource_type())
        reference = getattr(resource, field, None) if field else None
        key = patient_key(getattr(reference, "reference", None))
        if key is None:
            continue
        if known and key not in known:
            _refuse(item, "is about another patient than the rest of the record")
        known.add(key)


def _refuse(item: Located, problem: str) -> None:
    kind = item.resource.get_resource_type()
    raise InvalidRequest(
        f"{item.param}: this {kind} {problem}; send one patient's resources per request.",
        param=item.param,
    )
