"""The CDS Hooks service end to end: a real gateway on a loopback port, the team's synthetic
FHIR patients (data/fhir) as prefetch or behind a fake EMR FHIR server (tests/fake_fhir.py,
real HTTP), the real guideline index, and the facts each call leaves for its audit row.

Authentication is off (tests/conftest.py) except in the API-key test at the end; the EMR's
JWT is tested in test_cds_jwt.py.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from retrieval.index import Index
from server.app import create_app
from server.cds.hooks import CdsHooks
from server.pipeline.facts import RequestFacts
from tests.auth_fixtures import AuthedGateway, start_authed_gateway
from tests.conftest import FakeWorker, isolated_settings, wait_until
from tests.fake_fhir import FhirBehaviour, fake_fhir_app
from tests.fakes import ServerThread, free_port

__all__ = ["start_authed_gateway"]

TODAY = date(2026, 12, 5)  # the sample patients are dated around early December 2026
SAMPLES = Path(__file__).resolve().parents[1] / "data" / "fhir"
TOKEN = "fhir-access-token"
NAME, MRN = "Zebulon Quarrington", "MRN-88412093"  # canaries: real-looking, never to leak
PATIENT_KEYS = {
    "Patient": "patient",
    "Condition": "conditions",
    "MedicationRequest": "medications",
    "Medication": "medications",
    "AllergyIntolerance": "allergies",
}


def sample(name: str) -> list[dict[str, Any]]:
    """A sample patient's resources, the Patient given a real-looking name and MRN."""
    bundle = json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))
    resources = [copy.deepcopy(entry["resource"]) for entry in bundle["entry"]]
    for resource in resources:
        if resource["resourceType"] == "Patient":
            resource["name"] = [{"family": "Quarrington", "given": ["Zebulon"], "text": NAME}]
            resource["identifier"] = [{"system": "urn:oid:2.16.840.1.113883.19.5", "value": MRN}]
    return resources


def patient_id(resources: list[dict[str, Any]]) -> str:
    return next(r["id"] for r in resources if r["resourceType"] == "Patient")


def prefetch(resources: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, Any]:
    """What an EMR would send for the templates: the Patient, and one searchset per key."""
    found: dict[str, list[dict[str, Any]]] = {key: [] for key in keys if key != "patient"}
    out: dict[str, Any] = {}
    for resource in resources:
        kind = resource["resourceType"]
        key = PATIENT_KEYS.get(kind)
        if kind == "Observation":
            category = resource["category"][0]["coding"][0]["code"]
            key = "vitals" if category == "vital-signs" else "labs"
        if key == "patient" and "patient" in keys:
            out["patient"] = resource
        elif key in found:
            found[key].append(resource)
    for key, items in found.items():
        out[key] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": r} for r in items],
        }
    return out


VIEW_KEYS = ("patient", "conditions", "medications", "allergies", "vitals", "labs")
SIGN_KEYS = ("patient", "conditions", "medications", "allergies")


def hook_body(hook: str, resources: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    context: dict[str, Any] = {"userId": "Practitioner/example", "patientId": patient_id(resources)}
    return {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context, **fields}


def draft(pid: str, rxnorm: str, text: str, order_id: str = "draft-1") -> dict[str, Any]:
    request = {
        "resourceType": "MedicationRequest",
        "id": order_id,
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": rxnorm}],
            "text": text,
        },
        "subject": {"reference": f"Patient/{pid}"},
    }
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": request}]}


def order_body(resources: list[dict[str, Any]], rxnorm: str, text: str) -> dict[str, Any]:
    body = hook_body("order-sign", resources, prefetch=prefetch(resources, SIGN_KEYS))
    body["context"]["draftOrders"] = draft(patient_id(resources), rxnorm, text)
    return body


class CaptureFacts:
    """Outermost middleware: keeps each request's RequestFacts after the response."""

    def __init__(self, app: ASGIApp, sink: list[RequestFacts]) -> None:
        self.app = app
        self.sink = sink

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
        if scope["type"] == "http" and scope["path"].startswith("/cds-services/"):
            self.sink.append(scope["state"]["facts"])


@dataclass
class Hooks:
    url: str
    facts: list[RequestFacts]

    def post(self, service: str, body: Any, timeout: float = 30.0) -> httpx.Response:
        return httpx.post(f"{self.url}/cds-services/{service}", json=body, timeout=timeout)


@pytest.fixture(scope="module")
def served_index(tmp_path_factory: pytest.TempPathFactory, guideline_index: Index) -> Path:
    folder = tmp_path_factory.mktemp("cds") / "index"
    shutil.copytree(guideline_index.folder, folder)
    return folder


@pytest.fixture
def start_hooks(stack: ExitStack, tmp_path: Path, worker: FakeWorker) -> Callable[..., Hooks]:
    def start(index: Path | None = None, **cds: Any) -> Hooks:
        retrieval = {"index_dir": str(index)} if index else {"enabled": False}
        cds = {"allowed_http_hosts": ["127.0.0.1"], "fetch_timeout_s": 1.5, **cds}
        settings = isolated_settings(tmp_path, [worker.url], retrieval=retrieval, cds=cds)
        app = create_app(settings)
        app.state.cds = CdsHooks(
            settings.cds, settings.retrieval, settings.fhir, today=lambda: TODAY
        )
        facts: list[RequestFacts] = []
        app.add_middleware(CaptureFacts, sink=facts)
        server = stack.enter_context(ServerThread(app))
        wait_until(lambda: httpx.get(f"{server.url}/ready").status_code == 200, what="ready")
        return Hooks(server.url, facts)

    return start


@pytest.fixture
def hooks(start_hooks: Callable[..., Hooks]) -> Hooks:
    return start_hooks()


@pytest.fixture
def indexed_hooks(start_hooks: Callable[..., Hooks], served_index: Path) -> Hooks:
    return start_hooks(served_index)


@pytest.fixture
def start_fhir(stack: ExitStack) -> Callable[..., tuple[str, FhirBehaviour]]:
    def start(resources: list[dict[str, Any]], **behaviour: Any) -> tuple[str, FhirBehaviour]:
        state = FhirBehaviour(resources=resources, token=TOKEN, **behaviour)
        server = stack.enter_context(ServerThread(fake_fhir_app(state)))
        return f"{server.url}/fhir", state

    return start


def with_server(body: dict[str, Any], base: str) -> dict[str, Any]:
    authorization = {
        "access_token": TOKEN,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "clinserve",
    }
    return {**body, "fhirServer": base, "fhirAuthorization": authorization}


def indicators(response: httpx.Response) -> list[str]:
    return [card["indicator"] for card in response.json()["cards"]]


def error(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    return body


# ---- discovery --------------------------------------------------------------------------


def test_discovery_announces_both_hooks_with_their_prefetch_templates(hooks: Hooks) -> None:
    answer = httpx.get(f"{hooks.url}/cds-services")
    assert answer.status_code == 200
    services = {s["id"]: s for s in answer.json()["services"]}
    assert {s["hook"] for s in services.values()} == {"patient-view", "order-sign"}
    for service in services.values():
        assert {"hook", "id", "title", "description", "prefetch"} <= service.keys()
        assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
        assert all("://" not in t for t in service["prefetch"].values())
    assert set(services["patient-view"]["prefetch"]) == set(VIEW_KEYS)
    assert set(services["order-sign"]["prefetch"]) == set(SIGN_KEYS)


def test_cds_routes_can_be_switched_off(start_hooks: Callable[..., Hooks]) -> None:
    off = start_hooks(enabled=False)
    assert httpx.get(f"{off.url}/cds-services").status_code == 404


# ---- patient-view -----------------------------------------------------------------------


def test_patient_view_with_prefetch_flags_inr_and_cites_guidelines(indexed_hooks: Hooks) -> None:
    delta = sample("warfarin-atrial-fibrillation")
    body = hook_body("patient-view", delta, prefetch=prefetch(delta, VIEW_KEYS))
    answer = indexed_hooks.post("patient-view", body)
    assert answer.status_code == 200, answer.text
    cards = answer.json()["cards"]
    assert cards[0]["indicator"] == "critical" and "INR" in cards[0]["summary"]
    assert "4.6" in cards[0]["detail"] and "2026-11-28" in cards[0]["detail"]
    guideline = [c for c in cards if c["indicator"] == "info"]
    assert guideline, "an info card with guideline passages for atrial fibrillation"
    af = next(c for c in guideline if "Atrial fibrillation" in c["summary"])
    assert "NG196" in af["source"]["label"]  # the document title, then the section
    assert af["detail"].count("> ") >= 1 and len(af["summary"]) < 140
    assert all(len(c["summary"]) < 140 and c["uuid"] for c in cards)
    facts = indexed_hooks.facts[-1]
    assert facts.model == "cds:patient-view" and facts.red_flags == ["inr-high-on-vka"]
    assert any("af-anticoagulation" in chunk for chunk in facts.citations)
    account = json.loads(facts.prompt_text or "{}")
    assert account["hookInstance"] == body["hookInstance"]
    assert account["resources"]["labs"] == 4 and account["prefetch_fetched"] == []


def test_patient_view_without_guideline_index_still_flags(hooks: Hooks) -> None:
    delta = sample("warfarin-atrial-fibrillation")
    answer = hooks.post(
        "patient-view", hook_body("patient-view", delta, prefetch=prefetch(delta, VIEW_KEYS))
    )
    assert indicators(answer) == ["critical"]
    assert hooks.facts[-1].citations == []


def test_patient_view_fetches_missing_prefetch_from_the_fhir_server(
    hooks: Hooks, start_fhir: Callable[..., tuple[str, FhirBehaviour]]
) -> None:
    delta = sample("warfarin-atrial-fibrillation")
    base, fhir = start_fhir(delta, page_size=1)  # conditions come back one page at a time
    supplied = {"patient": prefetch(delta, ("patient",))["patient"]}
    body = with_server(hook_body("patient-view", delta, prefetch=supplied), base)
    answer = hooks.post("patient-view", body)
    assert answer.status_code == 200, answer.text
    assert indicators(answer) == ["critical"]
    paths = sorted({r["path"] for r in fhir.requests})
    assert paths == ["AllergyIntolerance", "Condition", "MedicationRequest", "Observation"]
    assert all(r["authorization"] == f"Bearer {TOKEN}" for r in fhir.requests)
    assert all(r["accept"] == "application/fhir+json" for r in fhir.requests)
    assert all(r["query"]["patient"] == "delta-delta" for r in fhir.requests)
    assert {r["query"].get("_page") for r in fhir.requests if r["path"] == "Condition"} == {
        None,
        "2",
    }
    observations = [r for r in fhir.requests if r["path"] == "Observation"]
    assert all("_page" not in r["query"] for r in observations)  # top N: first page only
    account = json.loads(hooks.facts[-1].prompt_text or "{}")
    assert account["prefetch_fetched"] == [
        "allergies",
        "conditions",
        "labs",
        "medications",
        "vitals",
    ]
    assert account["prefetch_supplied"] == ["patient"]


def test_a_next_link_to_another_host_is_not_followed(
    hooks: Hooks, start_fhir: Callable[..., tuple[str, FhirBehaviour]]
) -> None:
    delta = sample("warfarin-atrial-fibrillation")
    elsewhere_base, elsewhere = start_fhir(delta)
    base, fhir = start_fhir(delta, page_size=1, next_base=elsewhere_base.removesuffix("/fhir"))
    answer = hooks.post("patient-view", with_server(hook_body("patient-view", delta), base))
    assert answer.status_code == 412
    assert "another" in error(answer)["message"] or "away" in error(answer)["message"]
    assert fhir.requests and elsewhere.requests == []


def test_more_pages_than_allowed_is_a_412_not_a_truncated_record(
    start_hooks: Callable[..., Hooks], start_fhir: Callable[..., tuple[str, FhirBehaviour]]
) -> None:
    hooks = start_hooks(max_pages=1)
    delta = sample("warfarin-atrial-fibrillation")
    base, _ = start_fhir(delta, page_size=1)
    answer = hooks.post("patient-view", with_server(hook_body("patient-view", delta), base))
    assert answer.status_code == 412 and "pages" in error(answer)["message"]


def test_no_prefetch_and_no_fhir_server_is_412(hooks: Hooks) -> None:
    delta = sample("warfarin-atrial-fibrillation")
    partial = prefetch(delta, ("patient", "conditions"))
    answer = hooks.post("patient-view", hook_body("patient-view", delta, prefetch=partial))
    assert answer.status_code == 412
    assert error(answer)["type"] == "PreconditionFailedError"
    assert "allergies" in error(answer)["message"]


def test_null_prefetch_means_no_data_not_missing(hooks: Hooks) -> None:
    delta = sample("warfarin-atrial-fibrillation")
    data = prefetch(delta, VIEW_KEYS) | {"allergies": None, "labs": None}
    answer = hooks.post("patient-view", hook_body("patient-view", delta, prefetch=data))
    assert answer.status_code == 200 and indicators(answer) == []  # the INR was in labs


@pytest.mark.parametrize("failure", ["down", "slow", "500", "401", "invalid"])
def test_fhir_server_failures_are_412_within_the_timeout(
    hooks: Hooks, start_fhir: Callable[..., tuple[str, FhirBehaviour]], failure: str
) -> None:
    delta = sample("warfarin-atrial-fibrillation")
    behaviours: dict[str, dict[str, Any]] = {
        "slow": {"delay_s": 5.0},
        "500": {"fail_with": 500},
        "invalid": {"invalid": True},
    }
    behaviour = behaviours.get(failure, {})
    base, fhir = start_fhir(delta, **behaviour)
    if failure == "down":
        base = f"http://127.0.0.1:{free_port()}/fhir"
    if failure == "401":
        fhir.token = "another-token"
    started = time.monotonic()
    answer = hooks.post("patient-view", with_server(hook_body("patient-view", delta), base))
    assert answer.status_code == 412, answer.text
    assert time.monotonic() - started < 4.0  # fetch_timeout_s is 1.5 in these tests
    assert TOKEN not in answer.text and "delta-delta" not in answer.text


def test_plain_http_fhir_server_is_refused_unless_loopback_is_allowed(
    start_hooks: Callable[..., Hooks], start_fhir: Callable[..., tuple[str, FhirBehaviour]]
) -> None:
    strict = start_hooks(allowed_http_hosts=[])
    delta = sample("warfarin-atrial-fibrillation")
    base, fhir = start_fhir(delta)
    answer = strict.post("patient-view", with_server(hook_body("patient-view", delta), base))
    assert answer.status_code == 400 and error(answer)["param"] == "fhirServer"
    assert fhir.requests == []


def test_a_fhir_server_outside_the_configured_list_is_refused(
    start_hooks: Callable[..., Hooks], start_fhir: Callable[..., tuple[str, FhirBehaviour]]
) -> None:
    delta = sample("warfarin-atrial-fibrillation")
    base, fhir = start_fhir(delta)
    other_base, other = start_fhir(delta)
    hooks = start_hooks(fhir_servers=[base])
    listed = hooks.post("patient-view", with_server(hook_body("patient-view", delta), base))
    assert listed.status_code == 200 and fhir.requests
    unlisted = hooks.post("patient-view", with_server(hook_body("patient-view", delta), other_base))
    assert unlisted.status_code == 400 and error(unlisted)["param"] == "fhirServer"
    assert other.requests == []


# ---- order-sign -------------------------------------------------------------------------


def test_amoxicillin_for_a_penicillin_allergic_patient_is_critical_with_a_delete(
    indexed_hooks: Hooks,
) -> None:
    charlie = sample("penicillin-allergy-pneumonia")
    body = order_body(charlie, "723", "Amoxicillin 500 mg oral capsule")
    answer = indexed_hooks.post("order-sign", body)
    assert answer.status_code == 200, answer.text
    card = answer.json()["cards"][0]
    assert card["indicator"] == "critical"  # anaphylaxis, criticality high
    assert "amoxicillin" in card["summary"] and "Penicillin" in card["summary"]
    assert card["selectionBehavior"] == "at-most-one"
    [suggestion] = card["suggestions"]
    assert suggestion["actions"] == [
        {
            "type": "delete",
            "resourceId": "MedicationRequest/draft-1",
            "description": "Remove the draft order for amoxicillin.",
        }
    ]
    assert all(reason["display"] and reason["system"] for reason in card["overrideReasons"])
    assert "Guideline context" in card["detail"]  # passages for amoxicillin + pneumonia
    facts = indexed_hooks.facts[-1]
    assert facts.model == "cds:order-sign" and facts.red_flags == ["allergy:penicillins"]
    assert facts.citations
    assert json.loads(facts.prompt_text or "{}")["resources"]["draftOrders"] == 1


def test_a_cephalosporin_after_a_penicillin_allergy_is_a_warning(hooks: Hooks) -> None:
    charlie = sample("penicillin-allergy-pneumonia")
    answer = hooks.post("order-sign", order_body(charlie, "2231", "Cephalexin 500 mg capsule"))
    assert indicators(answer) == ["warning"]
    assert answer.json()["cards"][0]["suggestions"][0]["actions"][0]["type"] == "delete"


def test_a_drug_that_conflicts_with_nothing_gets_no_warning(indexed_hooks: Hooks) -> None:
    charlie = sample("penicillin-allergy-pneumonia")
    answer = indexed_hooks.post("order-sign", order_body(charlie, "18631", "Azithromycin 500 mg"))
    assert answer.status_code == 200
    assert set(indicators(answer)) <= {"info"}
    assert all("suggestions" not in card for card in answer.json()["cards"])
    assert indexed_hooks.facts[-1].red_flags == []


def test_an_nsaid_for_a_patient_on_warfarin_is_an_interaction_warning(hooks: Hooks) -> None:
    delta = sample("warfarin-atrial-fibrillation")
    answer = hooks.post("order-sign", order_body(delta, "5640", "Ibuprofen 400 mg tablet"))
    assert indicators(answer) == ["warning"]
    assert answer.json()["cards"][0]["summary"] == "Bleeding risk: ibuprofen with warfarin"
    assert hooks.facts[-1].red_flags == ["interaction:anticoagulant-nsaid"]


def test_order_sign_can_fetch_from_the_fhir_server(
    hooks: Hooks, start_fhir: Callable[..., tuple[str, FhirBehaviour]]
) -> None:
    charlie = sample("penicillin-allergy-pneumonia")
    base, fhir = start_fhir(charlie)
    body = with_server(order_body(charlie, "723", "Amoxicillin 500 mg"), base)
    del body["prefetch"]
    answer = hooks.post("order-sign", body)
    assert indicators(answer) == ["critical"]
    assert sorted(r["path"] for r in fhir.requests) == [
        "AllergyIntolerance",
        "Condition",
        "MedicationRequest",
        "Patient/charlie-charlie",
    ]


# ---- malformed requests -----------------------------------------------------------------


def malformed(charlie: list[dict[str, Any]]) -> list[tuple[str, str, Any, str | None]]:
    good = order_body(charlie, "723", "Amoxicillin")
    without = {k: v for k, v in good.items() if k != "hookInstance"}
    wrong_patient = copy.deepcopy(good)
    wrong_patient["prefetch"]["patient"]["id"] = "someone-else"
    other_subject = copy.deepcopy(good)
    entry = other_subject["context"]["draftOrders"]["entry"][0]["resource"]
    entry["subject"] = {"reference": "Patient/someone-else"}
    bad_fhir = copy.deepcopy(good)
    bad_fhir["prefetch"]["conditions"]["entry"][0]["resource"]["clinicalStatus"] = "active"
    no_patient_id = copy.deepcopy(good)
    del no_patient_id["context"]["patientId"]
    token_only = {
        **good,
        "fhirAuthorization": {
            "access_token": "t",
            "token_type": "Bearer",
            "expires_in": 1,
            "scope": "s",
            "subject": "c",
        },
    }
    return [
        ("order-sign", "hookInstance missing", without, "hookInstance"),
        ("order-sign", "hookInstance not a UUID", {**good, "hookInstance": "1"}, "hookInstance"),
        ("order-sign", "the other hook", {**good, "hook": "patient-view"}, "hook"),
        ("patient-view", "order-sign body", good, "hook"),
        ("order-sign", "no patientId", no_patient_id, "context.patientId"),
        (
            "order-sign",
            "no draftOrders",
            {**good, "context": {"userId": "u", "patientId": "p"}},
            "context.draftOrders",
        ),
        (
            "order-sign",
            "bad patientId",
            {**good, "context": {**good["context"], "patientId": "../../x"}},
            "context.patientId",
        ),
        ("order-sign", "invalid FHIR", bad_fhir, "prefetch.conditions.entry[0].resource"),
        ("order-sign", "another patient", wrong_patient, "prefetch.patient"),
        ("order-sign", "draft for another", other_subject, "context.draftOrders"),
        ("order-sign", "token without server", token_only, None),
        ("order-sign", "bad fhirServer", {**good, "fhirServer": "ftp://x"}, "fhirServer"),
        ("order-sign", "not an object", [good], None),
    ]


def test_malformed_requests_are_400s_naming_the_field(hooks: Hooks) -> None:
    charlie = sample("penicillin-allergy-pneumonia")
    for service, why, body, param in malformed(charlie):
        answer = hooks.post(service, body)
        assert answer.status_code == 400, (why, answer.text)
        found = error(answer)["param"]
        assert (found or "").startswith(param or ""), (why, found)
        assert NAME not in answer.text and MRN not in answer.text
    invalid_json = httpx.post(
        f"{hooks.url}/cds-services/order-sign",
        content=b"{nope",
        headers={"content-type": "application/json"},
    )
    assert invalid_json.status_code == 400


def test_unknown_service_is_404(hooks: Hooks) -> None:
    charlie = sample("penicillin-allergy-pneumonia")
    answer = hooks.post("medication-prescribe", hook_body("medication-prescribe", charlie))
    assert answer.status_code == 404 and error(answer)["type"] == "NotFoundError"


# ---- what leaves the service ------------------------------------------------------------


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    yield caplog


def test_name_and_identifier_leave_no_trace(
    indexed_hooks: Hooks,
    start_fhir: Callable[..., tuple[str, FhirBehaviour]],
    logs: pytest.LogCaptureFixture,
) -> None:
    charlie = sample("penicillin-allergy-pneumonia")
    delta = sample("warfarin-atrial-fibrillation")
    base, _ = start_fhir(delta)
    answers = [
        indexed_hooks.post("order-sign", order_body(charlie, "723", "Amoxicillin 500 mg")),
        indexed_hooks.post(
            "patient-view", hook_body("patient-view", delta, prefetch=prefetch(delta, VIEW_KEYS))
        ),
        indexed_hooks.post("patient-view", with_server(hook_body("patient-view", delta), base)),
    ]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert any(a.json()["cards"] for a in answers)
    texts = [a.text for a in answers] + [logs.text]
    texts += [f"{f.prompt_text} {f.citations} {f.red_flags}" for f in indexed_hooks.facts]
    for text in texts:
        for canary in (NAME, "Quarrington", MRN, TOKEN):
            assert canary not in text


# ---- with authentication on -------------------------------------------------------------


def test_hooks_take_an_api_key_with_the_cds_scope(
    start_authed_gateway: Callable[..., AuthedGateway],
) -> None:
    gateway = start_authed_gateway()
    delta = sample("warfarin-atrial-fibrillation")
    body = hook_body("patient-view", delta, prefetch=prefetch(delta, VIEW_KEYS))
    url = f"{gateway.url}/cds-services/patient-view"

    def call(key: str | None) -> int:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.post(url, json=body, headers=headers, timeout=30).status_code

    assert call(gateway.key("cds")) == 200
    assert call(gateway.key("chat")) == 403
    assert call(None) == 401
    assert httpx.get(f"{gateway.url}/cds-services").status_code == 200  # discovery is public
