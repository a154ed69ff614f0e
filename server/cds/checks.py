"""Conflicts between one medication order and the patient's allergies and medications.

Pure functions over recognised drugs (`server.cds.drugs`), so every rule is testable without
FHIR or HTTP. Severity follows how sure and how dangerous: the very substance the patient is
allergic to is critical; another drug of the same class is a warning, critical when the
recorded reaction was severe (anaphylaxis, angioedema, a severe skin reaction) or the
allergy's criticality is high; a cross-reactive class (a cephalosporin after a penicillin
allergy) is a warning. Duplicate therapy is flagged at the class's own level (two
anticoagulants are critical, two statins a warning); interactions carry theirs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from server.cds.drugs import Drug, DrugTable
from server.cds.models import INDICATOR_RANK, Indicator
from server.fhir.summary import Allergy, Medication

SEVERE_REACTIONS = (
    "anaphyla",
    "angioedema",
    "angio-oedema",
    "stevens-johnson",
    "toxic epidermal",
    "drug reaction with eosinophilia",
    "过敏性休克",
    "血管性水肿",
    "喉头水肿",
)

ConflictKind = Literal["allergy", "cross-reactivity", "duplicate", "interaction"]


@dataclass(frozen=True)
class Conflict:
    kind: ConflictKind
    rule: str  # stable id for the audit row, e.g. "allergy:penicillins"
    indicator: Indicator
    summary: str
    detail: str


def severe(allergy: Allergy) -> bool:
    reactions = " ".join(allergy.reactions).lower()
    return allergy.criticality == "high" or any(word in reactions for word in SEVERE_REACTIONS)


def _recorded(allergy: Allergy) -> str:
    parts = []
    if allergy.reactions:
        parts.append("recorded reaction: " + ", ".join(allergy.reactions))
    if allergy.criticality:
        parts.append(f"criticality: {allergy.criticality}")
    return f" ({'; '.join(parts)})" if parts else ""


def allergy_conflicts(
    table: DrugTable, order: Drug, order_label: str, allergies: Sequence[tuple[Allergy, Drug]]
) -> list[Conflict]:
    found: list[Conflict] = []
    for allergy, substance in allergies:
        recorded = allergy.substance.text
        same = order.ingredients & substance.ingredients
        shared = order.classes & substance.classes
        if same:
            found.append(
                Conflict(
                    "allergy",
                    f"allergy:{sorted(same)[0]}",
                    "critical",
                    f"Allergy: {order_label} ordered for a patient allergic to {recorded}",
                    f"The order contains {', '.join(sorted(same))}, a substance on the "
                    f"patient's allergy list{_recorded(allergy)}.",
                )
            )
        elif shared:
            names = ", ".join(table.class_name(c) for c in sorted(shared))
            found.append(
                Conflict(
                    "allergy",
                    f"allergy:{sorted(shared)[0]}",
                    "critical" if severe(allergy) else "warning",
                    f"Allergy: {order_label} is in the same class as {recorded} ({names})",
                    f"The patient is allergic to {recorded}{_recorded(allergy)}; "
                    f"{order_label} belongs to the same class ({names}).",
                )
            )
        else:
            for pair in table.cross:
                if pair.allergy in substance.classes and pair.order in order.classes:
                    found.append(
                        Conflict(
                            "cross-reactivity",
                            f"cross-reactivity:{pair.allergy}:{pair.order}",
                            "warning",
                            f"Possible cross-reactivity: {order_label} after an allergy to "
                            f"{recorded}",
                            f"The patient is allergic to {recorded}{_recorded(allergy)}. "
                            f"{pair.note}",
                        )
                    )
    return found


def medication_conflicts(
    table: DrugTable, order: Drug, order_label: str, current: Sequence[tuple[Medication, Drug]]
) -> list[Conflict]:
    """Duplicates of the same drug or class, and listed interactions, with each medication
    in `current` (the active list plus the other orders being signed)."""
    found: list[Conflict] = []
    for medication, drug in current:
        other = table.label(drug, medication.concept.text)
        how = ", ".join(part for part in (medication.status, medication.dosage) if part)
        if order.ingredients & drug.ingredients:
            found.append(
                Conflict(
                    "duplicate",
                    f"duplicate:{sorted(order.ingredients & drug.ingredients)[0]}",
                    "warning",
                    f"Duplicate order: {order_label} is already prescribed",
                    f"The patient already has an order for {other} ({how}).",
                )
            )
        else:
            for class_id in sorted(order.classes & drug.classes):
                level = table.classes[class_id].duplicate
                if level is not None:
                    name = table.class_name(class_id)
                    found.append(
                        Conflict(
                            "duplicate",
                            f"duplicate:{class_id}",
                            level,
                            f"Duplicate therapy: {order_label} and {other} are both {name}",
                            f"Two {name} together add risk without added benefit in most "
                            "patients; confirm that both are intended.",
                        )
                    )
        for interaction in table.interactions:
            if interaction.between(order, drug):
                found.append(
                    Conflict(
                        "interaction",
                        f"interaction:{interaction.id}",
                        interaction.indicator,
                        interaction.summary.format(order=order_label, current=other),
                        interaction.detail,
                    )
                )
    return found


def most_urgent_first(conflicts: list[Conflict]) -> list[Conflict]:
    """Sorted critical -> info, one per rule (the same rule met twice says nothing new)."""
    seen: set[str] = set()
    unique = []
    for conflict in sorted(conflicts, key=lambda c: INDICATOR_RANK[c.indicator]):
        if conflict.rule not in seen:
            seen.add(conflict.rule)
            unique.append(conflict)
    return unique
