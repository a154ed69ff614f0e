"""The synthetic patients in data/fhir, and the identifying strings they carry that must never
reach the model, a log line or the audit trail."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

FHIR_DATA = Path(__file__).resolve().parents[1] / "data" / "fhir"
TODAY = date(2026, 12, 5)  # the bundles' "now": their labs are from the weeks before

ALPHA = "hypertension-diabetes.json"
BRAVO = "asthma-child.json"
CHARLIE = "penicillin-allergy-pneumonia.json"
DELTA = "warfarin-atrial-fibrillation.json"
ECHO = "pregnancy-hypertension.json"

IDENTIFYING = (
    "Test Patient",  # given names
    "Alpha",  # the family names
    "Delta",
    "TEST-MRN",  # identifiers
    "Example Street",  # address
    "Testville",
    "TE5 7ZZ",
    "555 0100",  # phone
    "example.org",  # e-mail
    "Omega",  # the practitioner
    "prefers appointments",  # a free-text note
    "1962-03-14",  # birth dates
    "1948-01-30",
)


def bundle(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FHIR_DATA / name).read_text(encoding="utf-8"))
    return loaded


def leaks(text: str) -> list[str]:
    """The identifying strings found in `text` (none, when all is well)."""
    return [canary for canary in IDENTIFYING if canary in text]
