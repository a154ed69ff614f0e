"""The minimum necessary of a patient's record, as plain frozen values.

This is the contract between the FHIR readers (`server.fhir.reduce`, which builds it from
validated resources) and everything that uses a record: the chat prompt's patient summary
and the CDS Hooks cards. It holds no identifiers, names, addresses, telecom or free-text
notes by construction: age rather than birth date, sex rather than the Patient resource, and
for each clinical item only its coded concept, status, dates, values and units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal


@dataclass(frozen=True)
class Concept:
    """A coded clinical concept: the display text, and the first coding when there is one
    (`system` a FHIR code-system URI such as http://snomed.info/sct,
    http://www.nlm.nih.gov/research/umls/rxnorm, http://hl7.org/fhir/sid/icd-10-cm or
    http://loinc.org)."""

    text: str
    system: str | None = None
    code: str | None = None


@dataclass(frozen=True)
class Problem:
    """An active Condition (clinicalStatus active, recurrence or relapse)."""

    concept: Concept
    onset: date | None = None
    verification: str | None = None  # confirmed, provisional, differential, ...


@dataclass(frozen=True)
class Medication:
    """A MedicationRequest or MedicationStatement: the drug, its dosage text, its status."""

    concept: Concept
    status: str  # FHIR status: active, on-hold, draft, completed, ...
    dosage: str | None = None  # the dosage instruction's text, e.g. "5 mg once daily"
    authored: date | None = None


@dataclass(frozen=True)
class Allergy:
    """An AllergyIntolerance that is not resolved or refuted."""

    substance: Concept
    categories: tuple[str, ...] = ()  # medication, food, environment, biologic
    criticality: str | None = None  # low, high, unable-to-assess
    reactions: tuple[str, ...] = ()  # manifestation texts, e.g. "hives", "anaphylaxis"


@dataclass(frozen=True)
class Measurement:
    """A final (or amended/corrected) Observation with a value."""

    concept: Concept
    kind: Literal["vital-signs", "laboratory"]
    value: float | str  # a number when the Observation has a valueQuantity
    unit: str | None = None
    when: datetime | date | None = None
    interpretation: str | None = None  # H, L, HH, LL, A, N (v3 ObservationInterpretation)


@dataclass(frozen=True)
class PatientSummary:
    """What the model and the cards may see of one patient, dated `as_of`."""

    as_of: date
    age_years: int | None = None
    sex: str | None = None  # FHIR administrative gender
    problems: tuple[Problem, ...] = ()
    medications: tuple[Medication, ...] = ()
    allergies: tuple[Allergy, ...] = ()
    vitals: tuple[Measurement, ...] = ()  # the latest of each kind, newest first
    labs: tuple[Measurement, ...] = ()  # the latest of each kind within the lookback, newest first
    dropped: dict[str, int] = field(default_factory=dict)  # items left out, by resource type
