"""Validated FHIR resources reduced to the minimum a model needs (`PatientSummary`).

Minimum necessary, by construction: from the Patient only the age in whole years (never the
birth date) and administrative gender; for each clinical item its coded concept, status,
dates, values and units. Names, identifiers, addresses, telecom, free-text notes and
practitioner references are never read, so nothing downstream (the prompt, the CDS cards,
the logs) can leak them.

What counts as current:
- Condition: clinicalStatus active, recurrence or relapse, and not refuted or entered in
  error (a missing clinicalStatus is not evidence of an active problem).
- MedicationRequest: status active or on-hold; MedicationStatement: active or intended.
  `medicationReference` is resolved to a contained Medication (`#id`) or one elsewhere in
  the record (`Medication/id` or the entry's fullUrl); otherwise its display text is used.
- AllergyIntolerance: not resolved or inactive, not refuted or entered in error (a missing
  clinicalStatus keeps it: an allergy is safer shown than hidden).
- Observation: final, amended or corrected, with a value; category vital-signs (the latest
  of each code) or laboratory (the latest of each code within the lookback). Blood pressure
  panels (components 8480-6 / 8462-4) become one "120/80" mmHg value. When the Observation
  has no interpretation, one is derived from its reference range (L / H).
Whatever is left out is counted per resource type in `PatientSummary.dropped`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from fhir.resources.R4B.allergyintolerance import AllergyIntolerance
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.medication import Medication as FhirMedication
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.resource import Resource

from server.fhir.summary import (
    Allergy,
    Concept,
    Measurement,
    Medication,
    PatientSummary,
    Problem,
)

SYSTOLIC, DIASTOLIC = "8480-6", "8462-4"
UNIDENTIFIED = Concept("unidentified medication")

_ACTIVE_CONDITION = frozenset({"active", "recurrence", "relapse"})
_VOID = frozenset({"refuted", "entered-in-error"})
_ENDED_ALLERGY = frozenset({"resolved", "inactive"})
_CURRENT_REQUEST = frozenset({"active", "on-hold"})
_CURRENT_STATEMENT = frozenset({"active", "intended"})
_FINAL = frozenset({"final", "amended", "corrected"})
_KINDS: tuple[Literal["vital-signs", "laboratory"], ...] = ("vital-signs", "laboratory")
_OLDEST = datetime.min.replace(tzinfo=UTC)

When = datetime | date


def summarize(resources: Sequence[Resource], *, today: date, lookback_days: int) -> PatientSummary:
    """The patient's current record as of `today`; labs older than `lookback_days` are left
    out."""
    medications = _MedicationIndex(resources)
    dropped: Counter[str] = Counter()
    patient = next((r for r in resources if isinstance(r, Patient)), None)
    problems: list[Problem] = []
    current: list[Medication] = []
    allergies: list[Allergy] = []
    observations: list[Measurement] = []
    for resource in resources:
        if isinstance(resource, Patient | FhirMedication):
            continue  # age and sex; Medications are read through what refers to them
        if isinstance(resource, Condition) and (problem := _problem(resource)):
            problems.append(problem)
        elif isinstance(resource, MedicationRequest | MedicationStatement) and (
            medication := _current_medication(resource, medications)
        ):
            current.append(medication)
        elif isinstance(resource, AllergyIntolerance) and (allergy := _allergy(resource)):
            allergies.append(allergy)
        elif isinstance(resource, Observation) and (measurement := _measurement(resource)):
            observations.append(measurement)
        else:  # not current, or a type the summary does not read (Practitioner, Encounter...)
            dropped[resource.get_resource_type()] += 1
    since = today - timedelta(days=lookback_days)
    vitals = _latest_per_code(m for m in observations if m.kind == "vital-signs")
    recent = [m for m in observations if m.kind == "laboratory" and _recent(m, since)]
    labs = _latest_per_code(recent)
    dropped["Observation"] += len(observations) - len(vitals) - len(labs)
    return PatientSummary(
        as_of=today,
        age_years=_age(patient.birthDate, today) if patient else None,
        sex=patient.gender if patient else None,
        problems=tuple(problems),
        medications=tuple(current),
        allergies=tuple(allergies),
        vitals=vitals,
        labs=labs,
        dropped={kind: count for kind, count in sorted(dropped.items()) if count},
    )


def medication_orders(resources: Sequence[Resource]) -> tuple[Medication, ...]:
    """Every MedicationRequest whatever its status (draft orders included), one per request
    in the order given, so a caller can pair each with its resource."""
    medications = _MedicationIndex(resources)
    return tuple(_medication(r, medications) for r in resources if isinstance(r, MedicationRequest))


def concept(value: CodeableConcept | None) -> Concept | None:
    """Display text (the concept's own text, else a coding's display, else its code) and the
    first coding that has a code; None when there is nothing to show."""
    if value is None:
        return None
    codings = [c for c in value.coding or [] if c.code]
    text = value.text or next((c.display for c in value.coding or [] if c.display), None)
    first = codings[0] if codings else None
    text = text or (first.code if first else None)
    if not text:
        return None
    return Concept(text, first.system if first else None, first.code if first else None)


def _status(value: CodeableConcept | None) -> str | None:
    return next((c.code for c in (value.coding or []) if c.code), None) if value else None


def _problem(condition: Condition) -> Problem | None:
    if _status(condition.clinicalStatus) not in _ACTIVE_CONDITION:
        return None
    verification = _status(condition.verificationStatus)
    found = concept(condition.code)
    if verification in _VOID or found is None:
        return None
    return Problem(found, _day(condition.onsetDateTime), verification)


class _MedicationIndex:
    """Medication resources elsewhere in the record, by `Medication/id` and by id."""

    def __init__(self, resources: Iterable[Resource]) -> None:
        self.by_id = {r.id: r for r in resources if isinstance(r, FhirMedication) and r.id}

    def resolve(
        self, reference: str | None, contained: Sequence[Resource]
    ) -> FhirMedication | None:
        if not reference:
            return None
        if reference.startswith("#"):
            return next(
                (r for r in contained if isinstance(r, FhirMedication) and r.id == reference[1:]),
                None,
            )
        tail = reference.removeprefix("urn:uuid:").rstrip("/").rsplit("/", 1)[-1]
        if "/" in reference and "Medication/" not in reference:
            return None
        return self.by_id.get(tail)


def _medication(
    resource: MedicationRequest | MedicationStatement, medications: _MedicationIndex
) -> Medication:
    found = concept(resource.medicationCodeableConcept)
    reference = resource.medicationReference
    if found is None and reference is not None:
        target = medications.resolve(reference.reference, resource.contained or [])
        found = concept(target.code) if target else None
        found = found or (Concept(reference.display) if reference.display else None)
    if isinstance(resource, MedicationRequest):
        dosages, authored = resource.dosageInstruction, resource.authoredOn
    else:
        dosages, period = resource.dosage, resource.effectivePeriod
        authored = (
            resource.effectiveDateTime
            or (period.start if period else None)
            or resource.dateAsserted
        )
    dosage = next((d.text for d in dosages or [] if d.text), None)
    status = resource.status or "unknown"  # required by FHIR; the model allows None
    return Medication(found or UNIDENTIFIED, status, dosage, _day(authored))


def _current_medication(
    resource: MedicationRequest | MedicationStatement, medications: _MedicationIndex
) -> Medication | None:
    current = _CURRENT_REQUEST if isinstance(resource, MedicationRequest) else _CURRENT_STATEMENT
    return _medication(resource, medications) if resource.status in current else None


def _allergy(allergy: AllergyIntolerance) -> Allergy | None:
    if _status(allergy.clinicalStatus) in _ENDED_ALLERGY:
        return None
    substance = concept(allergy.code)
    if _status(allergy.verificationStatus) in _VOID or substance is None:
        return None
    reactions = [
        shown.text
        for reaction in allergy.reaction or []
        for manifestation in reaction.manifestation or []
        if (shown := concept(manifestation))
    ]
    return Allergy(
        substance,
        tuple(str(c) for c in allergy.category or []),
        allergy.criticality,
        tuple(dict.fromkeys(reactions)),
    )


def _measurement(observation: Observation) -> Measurement | None:
    categories = {
        coding.code for category in observation.category or [] for coding in category.coding or []
    }
    kind = next((k for k in _KINDS if k in categories), None)
    found = concept(observation.code)
    if kind is None or observation.status not in _FINAL or found is None:
        return None
    value, unit = _value(observation)
    if value is None:
        return None
    period = observation.effectivePeriod
    when = (
        observation.effectiveDateTime
        or observation.effectiveInstant
        or (period.start if period else None)
        or observation.issued
    )
    interpretation = next(
        (c.code for i in observation.interpretation or [] for c in i.coding or [] if c.code),
        None,
    )
    if interpretation is None and isinstance(value, float):
        interpretation = _against_range(observation, value)
    return Measurement(found, kind, value, unit, _moment(when), interpretation)


def _value(observation: Observation) -> tuple[float | str | None, str | None]:
    parts = {
        coding.code: component.valueQuantity
        for component in observation.component or []
        for coding in (component.code.coding if component.code else None) or []
        if coding.code in (SYSTOLIC, DIASTOLIC) and component.valueQuantity is not None
    }
    systolic, diastolic = parts.get(SYSTOLIC), parts.get(DIASTOLIC)
    if systolic and diastolic and systolic.value is not None and diastolic.value is not None:
        return f"{_number(systolic.value)}/{_number(diastolic.value)}", "mmHg"
    quantity = observation.valueQuantity
    if quantity is not None and quantity.value is not None:
        return float(quantity.value), quantity.unit or quantity.code
    if observation.valueInteger is not None:
        return float(observation.valueInteger), None
    if observation.valueString:
        return observation.valueString, None
    if observation.valueBoolean is not None:
        return ("yes" if observation.valueBoolean else "no"), None
    coded = concept(observation.valueCodeableConcept)
    return (coded.text if coded else None), None


def _against_range(observation: Observation, value: float) -> str | None:
    for reference in observation.referenceRange or []:
        low, high = reference.low, reference.high
        if low is not None and low.value is not None and value < float(low.value):
            return "L"
        if high is not None and high.value is not None and value > float(high.value):
            return "H"
    return None


def _number(value: Decimal | float) -> str:
    return format(Decimal(str(value)).normalize(), "f")


def _latest_per_code(measurements: Iterable[Measurement]) -> tuple[Measurement, ...]:
    """The newest Measurement of each code (or text, when uncoded), newest first."""
    latest: dict[tuple[str | None, str], Measurement] = {}
    for measurement in measurements:
        c = measurement.concept
        key = (c.system, c.code) if c.code else (None, c.text.casefold())
        held = latest.get(key)
        if held is None or _sort_key(measurement.when) > _sort_key(held.when):
            latest[key] = measurement
    return tuple(sorted(latest.values(), key=lambda m: _sort_key(m.when), reverse=True))


def _recent(measurement: Measurement, since: date) -> bool:
    day = _day(measurement.when)
    return day is not None and day >= since


def _sort_key(when: When | None) -> datetime:
    if when is None:
        return _OLDEST
    if isinstance(when, datetime):
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    return datetime(when.year, when.month, when.day, tzinfo=UTC)


def _moment(value: Any) -> When | None:
    """A FHIR date/dateTime as a date or datetime; partial dates ("2024", "2024-05") become
    their first day."""
    if isinstance(value, datetime | date):
        return value
    if isinstance(value, str) and value[:4].isdigit():
        year, _, month = value.partition("-")
        return date(int(year), int(month[:2]) if month[:2].isdigit() else 1, 1)
    return None


def _day(value: Any) -> date | None:
    moment = _moment(value)
    return moment.date() if isinstance(moment, datetime) else moment


def _age(birth: Any, today: date) -> int | None:
    """Whole years; a partial birth date counts from its latest possible day, so the age is
    never overstated. None for a missing or future birth date."""
    if isinstance(birth, str) and birth[:4].isdigit():
        year, _, month = birth.partition("-")
        if month[:2].isdigit():
            following = date(int(year) + int(month[:2]) // 12, int(month[:2]) % 12 + 1, 1)
            birth = following - timedelta(days=1)
        else:
            birth = date(int(year), 12, 31)
    if not isinstance(birth, date) or birth > today:
        return None
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
