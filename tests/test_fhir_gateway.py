"""FHIR patient context through the real app and a fake worker: what the model receives, what
the client gets back, and that the patient's identity reaches neither the worker, the logs
nor the audit trail (its rows or its retained content)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from cli.main import main
from tests.auth_fixtures import AuthedGateway, start_authed_gateway
from tests.conftest import FakeWorker
from tests.fakes import ServerThread
from tests.fhir_fixtures import ALPHA, CHARLIE, DELTA, bundle, leaks

__all__ = ["start_authed_gateway"]

Start = Callable[..., ServerThread]
# The bundles' labs are from late 2026: a long lookback keeps these tests true in later years.
FHIR = {"lab_lookback_days": 36500}
QUESTION = [{"role": "user", "content": "Should I change my blood pressure tablets?"}]


def sdk(gateway: ServerThread | AuthedGateway, key: str = "x") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)


def ask(gateway: ServerThread | AuthedGateway, record: Any, key: str = "x", **clinical: Any) -> Any:
    return sdk(gateway, key).chat.completions.create(
        model="fake-model",
        messages=QUESTION,  # type: ignore[arg-type]
        extra_body={"clinical": {"fhir": record, **clinical}},
    )


def post(gateway: ServerThread, body: dict[str, Any], path: str = "chat/completions") -> Any:
    return httpx.post(f"{gateway.url}/v1/{path}", json=body, timeout=30)


@pytest.fixture
def fhir_gateway(start_gateway: Start, worker: FakeWorker) -> ServerThread:
    return start_gateway([worker.url], fhir=FHIR)


def test_the_worker_gets_the_summary_and_never_the_identity(
    fhir_gateway: ServerThread, worker: FakeWorker
) -> None:
    completion = ask(fhir_gateway, bundle(ALPHA))
    sent = worker.behaviour.requests[-1]
    assert "clinical" not in sent, "the raw record stays in the gateway"
    system = sent["messages"][0]["content"]
    assert sent["messages"][0]["role"] == "system" and sent["messages"][-1] == QUESTION[0]
    assert '<patient-record source="EMR"' in system and "-year-old male." in system
    assert "- Essential hypertension, since 2015-06-01" in system
    assert "- Lisinopril 10 mg oral tablet: 10 mg once daily" in system
    assert "- Hemoglobin A1c: 8.2 % [high], 2026-11-02" in system
    assert "- Blood pressure panel: 148/92 mmHg [high], 2026-11-02" in system
    assert system.index("Intake note") < system.index("<patient-record"), "after the intake"
    assert leaks(json.dumps(sent, ensure_ascii=False)) == []
    assert completion.model_extra["clinical"]["patient_context"] == {
        "resources": 17, "problems": 2, "medications": 2, "allergies": 0, "vitals": 3,
        "labs": 3, "left_out": 0, "tokens": completion.model_extra["clinical"][
            "patient_context"]["tokens"],
        "dropped": {"Condition": 1, "MedicationRequest": 1, "Observation": 2, "Practitioner": 1},
    }  # fmt: skip


def test_a_streamed_answer_carries_the_counts_in_its_last_chunk(
    fhir_gateway: ServerThread, worker: FakeWorker
) -> None:
    body = {"model": "fake-model", "messages": QUESTION, "stream": True,
            "clinical": {"fhir": bundle(CHARLIE)}}  # fmt: skip
    with httpx.stream("POST", f"{fhir_gateway.url}/v1/chat/completions", json=body) as stream:
        assert stream.status_code == 200
        events = [line[6:] for line in stream.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    clinical = json.loads(events[-2])["clinical"]
    assert clinical["patient_context"]["allergies"] == 1
    system = worker.behaviour.requests[-1]["messages"][0]["content"]
    assert "- Penicillin; medication; criticality high; reactions: Anaphylaxis" in system


def test_without_a_record_nothing_changes(start_gateway: Start, worker: FakeWorker) -> None:
    gateway = start_gateway([worker.url], intake={"mode": "off"})
    completion = sdk(gateway).chat.completions.create(
        model="fake-model",
        messages=QUESTION,  # type: ignore[arg-type]
    )
    assert worker.behaviour.requests[-1]["messages"] == QUESTION
    assert "patient_context" not in completion.model_extra["clinical"]
    with_null = post(gateway, {"model": "fake-model", "messages": QUESTION,
                               "clinical": {"fhir": None}})  # fmt: skip
    assert with_null.status_code == 200 and "patient_context" not in with_null.json()["clinical"]
    assert worker.behaviour.requests[-1]["messages"] == QUESTION


@pytest.mark.parametrize(
    ("record", "param"),
    [
        ({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
            "resourceType": "Observation", "code": {"text": "INR"}}}]},
         "clinical.fhir.entry[0].resource.status"),
        ({"resourceType": "Patient", "birthDate": "Zebulon Quarrington"},
         "clinical.fhir.birthDate"),
        ([{"resourceType": "Patient", "id": "a"}, {"resourceType": "Patient", "id": "b"}],
         "clinical.fhir[1]"),
        ("Zebulon Quarrington", "clinical.fhir"),
    ],
)  # fmt: skip
def test_bad_fhir_is_a_400_envelope_with_param(
    fhir_gateway: ServerThread, worker: FakeWorker, record: Any, param: str
) -> None:
    response = post(fhir_gateway, {"model": "fake-model", "messages": QUESTION,
                                   "clinical": {"fhir": record}})  # fmt: skip
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "BadRequestError" and error["code"] == 400
    assert "Zebulon" not in error["message"] and "Quarrington" not in error["message"]
    assert worker.behaviour.requests == []


def test_the_record_is_bounded_switchable_and_for_chat_only(
    start_gateway: Start, worker: FakeWorker
) -> None:
    small = start_gateway([worker.url], fhir={**FHIR, "max_resources": 5})
    with pytest.raises(openai.BadRequestError) as caught:
        ask(small, bundle(DELTA))
    assert caught.value.body["param"] == "clinical.fhir"  # type: ignore[index]
    assert "more than 5 resources" in caught.value.body["message"]  # type: ignore[index]
    off = start_gateway([worker.url], fhir={"enabled": False})
    with pytest.raises(openai.BadRequestError) as caught:
        ask(off, bundle(DELTA))
    assert "switched off" in caught.value.body["message"]  # type: ignore[index]
    text = post(off, {"model": "fake-model", "prompt": "INR?",
                      "clinical": {"fhir": bundle(DELTA)}}, "completions")  # fmt: skip
    assert text.status_code == 400 and text.json()["error"]["param"] == "clinical.fhir"
    assert worker.behaviour.requests == []


def test_no_identity_in_the_logs_the_audit_rows_or_the_retained_prompt(
    start_authed_gateway: Callable[..., AuthedGateway],
    worker: FakeWorker,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    gateway = start_authed_gateway(fhir=FHIR)
    data = ["--data-dir", str(tmp_path)]
    user, admin = gateway.key("chat"), gateway.key("admin")
    assert main(["audit", "retention", "--tenant", "st-marys", "--days", "7", *data]) == 0
    ask(gateway, bundle(ALPHA), key=user)
    ask(gateway, bundle(DELTA), key=user, intake="off")
    bad = bundle(DELTA)
    bad["entry"][0]["resource"]["birthDate"] = "Test Patient Delta"
    with pytest.raises(openai.BadRequestError):
        ask(gateway, bad, key=user)
    assert len(worker.behaviour.requests) == 2
    assert gateway.gateway.audit.flush(10)
    rows = httpx.get(f"{gateway.url}/v1/admin/audit", headers={"Authorization": f"Bearer {admin}"})
    assert rows.status_code == 200 and len(rows.json()["data"]) == 3
    capsys.readouterr()
    assert main(["audit", "export", "--tenant", "st-marys", "--with-content", *data]) == 0
    exported = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    chats = [row for row in exported if row["route"] == "/v1/chat/completions"]
    assert json.loads(chats[0]["content"]["prompt"]) == QUESTION, "the client's messages only"
    assert caplog.records, "the test saw the logs"
    assert leaks(caplog.text) == []
    assert leaks(rows.text) == []
    assert leaks(json.dumps(exported, ensure_ascii=False)) == []
