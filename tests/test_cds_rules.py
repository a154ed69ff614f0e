"""The CDS Hooks rules on their own: drug recognition, allergy and medication conflicts, red
flag thresholds, prefetch templates and the card wire format. The end-to-end behaviour
through the gateway is in test_cds_hooks.py."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from server.cds.checks import allergy_conflicts, medication_conflicts, most_urgent_first
from server.cds.drugs import RXNORM, DrugTable
from server.cds.models import Action, Card, CdsResponse, Source, Suggestion, shorten
from server.cds.prefetch import PrefetchUnavailable, fill
from server.cds.services import SERVICES
from server.cds.thresholds import LOINC, load_thresholds, red_flags
from server.fhir.summary import Allergy, Concept, Measurement, Medication
from server.settings import CdsSettings

TODAY = date(2026, 12, 5)


@pytest.fixture(scope="module")
def table() -> DrugTable:
    return DrugTable.load()


@pytest.mark.parametrize(
    ("text", "system", "code", "ingredients", "cls"),
    [
        ("Amoxicillin 500 mg oral capsule", None, None, {"amoxicillin"}, "penicillins"),
        ("anything", RXNORM, "723", {"amoxicillin"}, "penicillins"),
        ("Penicillin", RXNORM, "70618", set(), "penicillins"),
        ("阿莫西林克拉维酸钾片", None, None, {"amoxicillin"}, "penicillins"),
        ("依诺肝素注射液", None, None, {"enoxaparin"}, "anticoagulants"),  # not also heparin
        ("Sulfa drugs", None, None, set(), "sulfonamide-antibiotics"),
        ("Warfarin 5 mg oral tablet", None, None, {"warfarin"}, "vitamin-k-antagonists"),
    ],
)
def test_drugs_are_recognised_by_code_and_by_name(
    table: DrugTable,
    text: str,
    system: str | None,
    code: str | None,
    ingredients: set[str],
    cls: str,
) -> None:
    drug = table.recognise(Concept(text, system, code))
    assert drug.ingredients == ingredients and cls in drug.classes


@pytest.mark.parametrize("text", ["Nystatin oral suspension", "Morphine sulfate", "Silver nitrate"])
def test_look_alike_words_are_not_drugs_of_a_class(table: DrugTable, text: str) -> None:
    drug = table.recognise(Concept(text))
    assert not drug.classes & {"statins", "sulfonamide-antibiotics", "nitrates"}


def allergy(text: str, criticality: str | None = None, *reactions: str) -> Allergy:
    return Allergy(Concept(text), ("medication",), criticality, reactions)


def check_allergy(table: DrugTable, order: str, recorded: Allergy) -> list[tuple[str, str]]:
    drug = table.recognise(Concept(order))
    pairs = [(recorded, table.recognise(recorded.substance))]
    return [(c.kind, c.indicator) for c in allergy_conflicts(table, drug, order, pairs)]


def test_allergy_severity_follows_substance_class_and_reaction(table: DrugTable) -> None:
    assert check_allergy(table, "amoxicillin", allergy("Penicillin", "low", "Hives")) == [
        ("allergy", "warning")
    ]
    assert check_allergy(table, "amoxicillin", allergy("Penicillin", None, "Anaphylaxis")) == [
        ("allergy", "critical")
    ]
    assert check_allergy(table, "amoxicillin", allergy("Penicillin", "high")) == [
        ("allergy", "critical")
    ]
    assert check_allergy(table, "Amoxicillin 250 mg", allergy("Amoxicillin", "low")) == [
        ("allergy", "critical")
    ]
    assert check_allergy(table, "cefalexin", allergy("Penicillin", "low")) == [
        ("cross-reactivity", "warning")
    ]
    assert check_allergy(table, "azithromycin", allergy("Penicillin", "high")) == []
    assert check_allergy(table, "Paracetamol", allergy("Peanut")) == []


def current(text: str) -> Medication:
    return Medication(Concept(text), "active", "once daily")


def check_meds(table: DrugTable, order: str, *active: str) -> list[tuple[str, str, str]]:
    drug = table.recognise(Concept(order))
    pairs = [(m, table.recognise(m.concept)) for m in map(current, active)]
    found = most_urgent_first(medication_conflicts(table, drug, order, pairs))
    return [(c.kind, c.rule, c.indicator) for c in found]


def test_interactions_and_duplicates(table: DrugTable) -> None:
    assert check_meds(table, "ibuprofen", "Warfarin 5 mg") == [
        ("interaction", "interaction:anticoagulant-nsaid", "warning")
    ]
    assert check_meds(table, "spironolactone", "lisinopril 10 mg") == [
        ("interaction", "interaction:raas-potassium-sparing", "warning")
    ]
    assert check_meds(table, "phenelzine", "sertraline") == [
        ("interaction", "interaction:serotonergic-maoi", "critical")
    ]
    assert check_meds(table, "apixaban", "warfarin") == [
        ("duplicate", "duplicate:anticoagulants", "critical")
    ]
    assert check_meds(table, "rosuvastatin", "atorvastatin 40 mg") == [
        ("duplicate", "duplicate:statins", "warning")
    ]
    assert check_meds(table, "atorvastatin", "Atorvastatin 20 mg") == [
        ("duplicate", "duplicate:atorvastatin", "warning")
    ]
    assert check_meds(table, "amoxicillin", "metformin", "lisinopril") == []


def test_unknown_rule_references_are_refused_at_load() -> None:
    raw = {
        "classes": [{"id": "a", "name": "a", "zh": "甲"}],
        "ingredients": [{"name": "x", "classes": ["a"]}],
        "cross_reactivity": [],
        "interactions": [
            {
                "id": "i",
                "between": [["class:a"], ["class:b"]],
                "indicator": "warning",
                "summary": "s",
                "detail": "d",
            }
        ],
    }
    with pytest.raises(ValueError, match="unknown"):
        DrugTable.load(raw)


def reading(code: str, value: float | str, unit: str | None, days_ago: int = 0) -> Measurement:
    when = datetime(2026, 12, 5, 8, 0) - timedelta(days=days_ago)
    return Measurement(Concept(code, LOINC, code), "vital-signs", value, unit, when)


def fired(measurement: Measurement, taking: frozenset[str] = frozenset()) -> list[str]:
    return [f.rule.id for f in red_flags(load_thresholds(), [measurement], taking, TODAY)]


def test_thresholds_need_code_unit_recency_and_context() -> None:
    assert fired(reading("59408-5", 86, "%")) == ["spo2-low"]
    assert fired(reading("59408-5", 95, "%")) == []
    assert fired(reading("59408-5", 86, "%", days_ago=10)) == []  # stale
    assert fired(reading("4548-4", 9.4, "%")) == ["hba1c-high"]
    assert fired(reading("4548-4", 79, "mmol/mol")) == []  # another unit: not guessed
    assert fired(reading("2823-3", 6.4, "mmol/L")) == ["potassium-high"]
    assert fired(reading("6301-6", 4.6, None)) == []  # INR alone: not on warfarin
    assert fired(reading("6301-6", 4.6, None), frozenset({"vitamin-k-antagonists"})) == [
        "inr-high-on-vka"
    ]
    assert fired(reading("85354-9", "186/124", "mmHg")) == ["sbp-high", "dbp-high"]
    assert fired(reading("85354-9", "132/84", "mmHg")) == []


def test_prefetch_tokens_are_filled_from_the_context_and_encoded() -> None:
    assert fill("Condition?patient={{context.patientId}}", {"patientId": "a b"}) == (
        "Condition?patient=a%20b"
    )
    with pytest.raises(PrefetchUnavailable):
        fill("Patient/{{context.patientId}}", {})
    with pytest.raises(PrefetchUnavailable):
        fill("Practitioner/{{userPractitionerId}}", {"patientId": "1"})


def test_templates_are_relative_queries_without_a_host() -> None:
    for service in SERVICES:
        for template in service.prefetch.values():
            assert "://" not in template and not template.startswith("/")
            assert "{{context.patientId}}" in template


def test_cards_omit_empty_fields_and_require_selection_behaviour() -> None:
    card = Card(summary="s", indicator="info", source=Source(label="l"), links=[])
    assert CdsResponse(cards=[card]).to_json()["cards"][0].keys() == {
        "uuid",
        "summary",
        "indicator",
        "source",
    }
    delete = Action(type="delete", description="d", resourceId="MedicationRequest/1")
    with pytest.raises(ValueError, match="selectionBehavior"):
        Card(
            summary="s",
            indicator="warning",
            source=Source(label="l"),
            suggestions=[Suggestion(label="x", actions=[delete])],
        )
    assert CdsResponse(cards=[]).to_json() == {"cards": []}


def test_summaries_are_cut_under_140_characters_at_a_word() -> None:
    text = "word " * 60
    short = shorten(text)
    assert len(short) < 140 and short.endswith("…") and "wor…" not in short


def test_settings_refuse_plain_http_beyond_loopback_and_malformed_server_lists() -> None:
    hosts = CdsSettings.model_validate({"allowed_http_hosts": "127.0.0.1,localhost"})
    assert hosts.allowed_http_hosts == [
        "127.0.0.1",
        "localhost",
    ]
    with pytest.raises(ValueError, match="loopback"):
        CdsSettings(allowed_http_hosts=["ehr.internal"])
    servers = CdsSettings.model_validate({"fhir_servers": "https://ehr.example.org/fhir/"})
    assert servers.fhir_servers == ["https://ehr.example.org/fhir"]
    with pytest.raises(ValueError, match="base URL"):
        CdsSettings(fhir_servers=["ehr.example.org"])
