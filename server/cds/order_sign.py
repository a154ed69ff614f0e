"""order-sign: each draft medication order checked before the clinician signs it.

Every draft is checked against the allergy list (same substance, same class,
cross-reactive class), against the active medications and the other drafts being signed
(duplicates, listed interactions), and is given the guideline passages retrieved for the
drug together with the patient's problems. A conflict is a warning or critical card whose
suggestion removes the draft (a `delete` action on `MedicationRequest/<id>`, when the draft
has an id), with override reasons for the clinician who signs anyway; the most urgent card
of a draft cites the passages. A draft with no conflict gets at most an info card with the
passages, and none when nothing relevant was found: a check that passes stays quiet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from retrieval.search import Hit, Retriever
from server.cds import guidance
from server.cds.cards import CardLimits, Drafted, HookCards, chunk_ids, most_urgent
from server.cds.checks import Conflict, allergy_conflicts, medication_conflicts, most_urgent_first
from server.cds.drugs import Drug, DrugTable
from server.cds.models import Action, Card, Coding, Source, Suggestion, shorten
from server.fhir.summary import Medication, PatientSummary

RULES_SOURCE = Source(label="clinserve medication safety rules (allergy, duplicate, interaction)")
OVERRIDE_SYSTEM = "urn:clinserve:cds:override-reason"
OVERRIDE_REASONS = [
    Coding(system=OVERRIDE_SYSTEM, code="tolerated-before", display="Patient has tolerated it"),
    Coding(system=OVERRIDE_SYSTEM, code="benefit-outweighs-risk", display="Benefit outweighs risk"),
    Coding(system=OVERRIDE_SYSTEM, code="monitoring-in-place", display="Will monitor closely"),
    Coding(system=OVERRIDE_SYSTEM, code="record-inaccurate", display="Record is inaccurate"),
]
MAX_PROBLEMS_IN_QUERY = 3


@dataclass(frozen=True)
class DraftOrder:
    """A draft MedicationRequest: what it orders, and its id when it has one."""

    medication: Medication
    resource_id: str | None


@dataclass(frozen=True)
class OrderSign:
    drugs: DrugTable
    limits: CardLimits

    async def cards(
        self, summary: PatientSummary, drafts: Sequence[DraftOrder], retriever: Retriever | None
    ) -> HookCards:
        recognised = [(draft, self.drugs.recognise(draft.medication.concept)) for draft in drafts]
        allergies = [(a, self.drugs.recognise(a.substance)) for a in summary.allergies]
        active = [(m, self.drugs.recognise(m.concept)) for m in summary.medications]
        problems = " ".join(p.concept.text for p in summary.problems[:MAX_PROBLEMS_IN_QUERY])
        labels = [self.drugs.label(drug, d.medication.concept.text) for d, drug in recognised]
        queries = [f"{label} {problems}".strip() for label in labels]
        found = await guidance.search_all(
            retriever, queries, self.limits.passages_per_card, self.limits.mode
        )
        drafted: list[Drafted] = []
        for index, ((draft, drug), label, hits) in enumerate(
            zip(recognised, labels, found, strict=True)
        ):
            others = [(d.medication, g) for i, (d, g) in enumerate(recognised) if i != index]
            conflicts = most_urgent_first(
                allergy_conflicts(self.drugs, drug, label, allergies)
                + medication_conflicts(self.drugs, drug, label, [*active, *others])
            )
            drafted += self._order_cards(draft, drug, label, conflicts, hits)
        return most_urgent(drafted, self.limits.max_cards)

    def _order_cards(
        self,
        draft: DraftOrder,
        drug: Drug,
        label: str,
        conflicts: list[Conflict],
        hits: list[Hit],
    ) -> list[Drafted]:
        if not conflicts:
            if not hits or not drug.known:
                return []
            card = Card(
                summary=shorten(
                    f"Guidelines for {label} in this patient: {guidance.counted(hits)}"
                ),
                detail=f"Guideline passages for **{label}** in this patient:\n\n"
                + guidance.cited(hits, self.limits.snippet_chars),
                indicator="info",
                source=guidance.source(hits[0]),
                links=guidance.links(hits),
            )
            return [Drafted(card, citations=chunk_ids(hits))]
        out = []
        for number, conflict in enumerate(conflicts):
            cite = hits if number == 0 else []
            detail = conflict.detail
            if cite:
                detail += "\n\n**Guideline context**\n\n" + guidance.cited(
                    cite, self.limits.snippet_chars
                )
            suggestion = _remove(draft, label)
            card = Card(
                summary=shorten(conflict.summary),
                detail=detail,
                indicator=conflict.indicator,
                source=RULES_SOURCE,
                suggestions=[suggestion] if suggestion is not None else None,
                selectionBehavior="at-most-one" if suggestion is not None else None,
                overrideReasons=OVERRIDE_REASONS,
                links=guidance.links(cite),
            )
            out.append(Drafted(card, citations=chunk_ids(cite), flags=(conflict.rule,)))
        return out


def _remove(draft: DraftOrder, label: str) -> Suggestion | None:
    if draft.resource_id is None:
        return None
    action = Action(
        type="delete",
        description=f"Remove the draft order for {label}.",
        resourceId=f"MedicationRequest/{draft.resource_id}",
    )
    return Suggestion(label=f"Remove the {label} order", isRecommended=True, actions=[action])
