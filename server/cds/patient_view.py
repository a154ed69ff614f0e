"""patient-view: on opening a chart, red flags first, then guidelines for each problem.

Red flags come from the thresholds (`server.cds.thresholds`) applied to the summary's
latest vital signs and labs; each is a warning or critical card of its own, so the EMR can
rank it. Then one info card per active problem, in the record's order, with the best
guideline passages for the problem's name (`problem_query`), each cited: source = the best
passage, links = every cited document with a URL. Problems without a matching passage get
no card: an empty "guidelines" card would only be noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from retrieval.documents import detect_language
from retrieval.search import Hit, Retriever
from server.cds import guidance
from server.cds.cards import CardLimits, Drafted, HookCards, chunk_ids, most_urgent
from server.cds.drugs import DrugTable
from server.cds.models import Card, Source, shorten
from server.cds.thresholds import RedFlag, Threshold, red_flags
from server.fhir.summary import Measurement, PatientSummary, Problem

RED_FLAG_SOURCE = Source(label="clinserve red-flag thresholds (vital signs and labs)")


@dataclass(frozen=True)
class PatientView:
    drugs: DrugTable
    thresholds: tuple[Threshold, ...]
    limits: CardLimits

    async def cards(
        self, summary: PatientSummary, retriever: Retriever | None, today: date
    ) -> HookCards:
        taking = frozenset(
            cls
            for medication in summary.medications
            for cls in self.drugs.recognise(medication.concept).classes
        )
        measurements = (*summary.vitals, *summary.labs)
        drafted = [
            _red_flag_card(flag) for flag in red_flags(self.thresholds, measurements, taking, today)
        ]
        room = max(self.limits.max_cards - len(drafted), 0)
        problems = summary.problems[:room]
        queries = [problem_query(problem.concept.text) for problem in problems]
        found = await guidance.search_all(
            retriever, queries, self.limits.passages_per_card, self.limits.mode
        )
        for problem, hits in zip(problems, found, strict=True):
            if hits:
                drafted.append(self._guideline_card(problem, hits))
        return most_urgent(drafted, self.limits.max_cards)

    def _guideline_card(self, problem: Problem, hits: list[Hit]) -> Drafted:
        name = problem.concept.text
        card = Card(
            summary=shorten(f"Guidelines for {name}: {guidance.counted(hits)}"),
            detail=f"Guideline passages for the active problem **{name}**:\n\n"
            + guidance.cited(hits, self.limits.snippet_chars),
            indicator="info",
            source=guidance.source(hits[0]),
            links=guidance.links(hits),
        )
        return Drafted(card, citations=chunk_ids(hits))


def problem_query(name: str) -> str:
    """The problem's name, steered towards the guidelines' management sections (a bare
    diagnosis mostly matches their Scope paragraphs, which say little a clinician needs)."""
    return f"{name} {'治疗' if detect_language(name) == 'zh' else 'management'}"


def _reading(measurement: Measurement) -> str:
    value = measurement.value
    shown = f"{value:g}" if isinstance(value, float | int) else str(value)
    return f"{shown} {measurement.unit}" if measurement.unit else shown


def _when(measurement: Measurement) -> str:
    taken = measurement.when
    if isinstance(taken, datetime):
        return taken.strftime("%Y-%m-%d %H:%M")
    return taken.isoformat() if taken is not None else "an unknown date"


def _red_flag_card(flag: RedFlag) -> Drafted:
    rule, measurement = flag.rule, flag.measurement
    reading = _reading(measurement)
    card = Card(
        summary=shorten(f"{rule.label}: {measurement.concept.text} {reading}"),
        detail=(
            f"**{measurement.concept.text}: {reading}** on {_when(measurement)} "
            f"(flagged {rule.describe()}).\n\n{rule.advice}"
        ),
        indicator=rule.indicator,
        source=RED_FLAG_SOURCE,
    )
    return Drafted(card, flags=(rule.id,))
