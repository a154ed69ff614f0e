"""The model and hybrid intake engines in the gateway and the CLI, against a fake worker that
answers the JSON-schema request like a constrained model would.

The rules engine, the grounding, the pool and the HTTP are real; only the model is scripted.
A real vLLM answering the same request is in tests/test_vllm_integration.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import FakeWorker
from tests.fakes import ServerThread

MESSAGE = "my gammy knee is killing me and i have a feaver"
MODEL_ANSWER = {
    "perturbations": [
        {"subcategory": "formal.dialect", "quote": "gammy", "correction": "painful"},
        {"subcategory": "formal.spelling_error", "quote": "feaver", "correction": "fever"},
    ],
    "emotion": {"label": "negative", "intensity": 0.6, "quotes": ["killing me"]},
    "symptoms": [{"term": "knee pain", "quote": "knee is killing me"}],
    "site": "knee",
    "onset": None,
    "duration": None,
    "severity": None,
    "red_flags": [],
}


@pytest.fixture
def model_worker(start_worker: Callable[..., FakeWorker]) -> FakeWorker:
    return start_worker(schema_reply=json.dumps(MODEL_ANSWER))


def chat(gateway: ServerThread, text: str, intake: Any) -> Any:
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="x", max_retries=0)
    return client.chat.completions.create(
        model="fake-model",
        messages=[{"role": "user", "content": text}],
        extra_body={"clinical": {"intake": intake}},
    )


def intake_requests(worker: FakeWorker) -> list[dict[str, Any]]:
    return [body for body in worker.behaviour.requests if "response_format" in body]


def test_model_engine_per_request_asks_the_worker_under_a_json_schema(
    start_gateway: Callable[..., ServerThread], model_worker: FakeWorker
) -> None:
    gateway = start_gateway([model_worker.url])
    completion = chat(gateway, MESSAGE, {"mode": "annotate", "engine": "model"})
    intake = completion.model_extra["clinical"]["intake"]
    assert intake["engine"] == "model" and "fallback" not in intake
    assert {p["text"] for p in intake["perturbations"]} == {"gammy", "feaver"}
    assert intake["chief_complaint"]["site"] == "knee"
    [asked] = intake_requests(model_worker)
    assert asked["response_format"]["type"] == "json_schema"
    assert asked["response_format"]["json_schema"]["strict"] is True
    assert asked["messages"][-1] == {"role": "user", "content": MESSAGE}
    assert asked["temperature"] == 0 and "clinical" not in asked
    answered = model_worker.behaviour.requests[-1]
    assert "response_format" not in answered and "Intake note" in answered["messages"][0]["content"]


def test_hybrid_as_the_deployment_default(
    start_gateway: Callable[..., ServerThread], model_worker: FakeWorker
) -> None:
    gateway = start_gateway([model_worker.url], intake={"engine": "hybrid"})
    completion = chat(gateway, MESSAGE, "normalize")
    intake = completion.model_extra["clinical"]["intake"]
    assert intake["engine"] == "hybrid" and intake["mode"] == "normalize"
    kinds = {(p["subcategory"], p["text"]) for p in intake["perturbations"]}
    assert ("formal.dialect", "gammy") in kinds
    assert "fever" in model_worker.behaviour.requests[-1]["messages"][-1]["content"]


@pytest.mark.parametrize("reply", ["{broken", json.dumps({"perturbations": []})])
def test_an_unusable_model_answer_falls_back_to_the_rules_and_keeps_red_flags(
    start_gateway: Callable[..., ServerThread],
    start_worker: Callable[..., FakeWorker],
    reply: str,
) -> None:
    worker = start_worker(schema_reply=reply)
    gateway = start_gateway([worker.url], intake={"engine": "model"})
    completion = chat(gateway, "crushing chest pain down my left arm, sweating", "annotate")
    clinical = completion.model_extra["clinical"]
    assert clinical["intake"]["engine"] == "rules"
    assert clinical["intake"]["fallback"].startswith("model engine: ")
    assert [flag["id"] for flag in clinical["red_flags"]] == ["cardiac_chest_pain"]
    assert "URGENT" in worker.behaviour.requests[-1]["messages"][0]["content"]


def test_a_slow_model_falls_back_after_the_timeout(
    start_gateway: Callable[..., ServerThread], start_worker: Callable[..., FakeWorker]
) -> None:
    worker = start_worker(schema_reply=json.dumps(MODEL_ANSWER), first_byte_delay_s=30)
    gateway = start_gateway([worker.url], intake={"engine": "model", "model_timeout_s": 0.5})
    response = httpx.post(f"{gateway.url}/v1/clinical/intake", json={"text": MESSAGE}, timeout=20)
    assert response.status_code == 200
    assert response.json()["engine"] == "rules"
    assert "no answer within 0.5 s" in response.json()["fallback"]


def test_the_intake_endpoint_takes_an_engine(
    start_gateway: Callable[..., ServerThread], model_worker: FakeWorker
) -> None:
    gateway = start_gateway([model_worker.url])
    url = f"{gateway.url}/v1/clinical/intake"
    hybrid = httpx.post(url, json={"text": MESSAGE, "engine": "hybrid"}, timeout=20)
    assert hybrid.status_code == 200 and hybrid.json()["engine"] == "hybrid"
    rules = httpx.post(url, json={"text": MESSAGE}, timeout=20)
    assert rules.json()["engine"] == "rules" and len(intake_requests(model_worker)) == 1
    bad = httpx.post(url, json={"text": MESSAGE, "engine": "oracle"}, timeout=20)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "engine"


@pytest.mark.parametrize(
    ("intake", "param"),
    [
        ({"mode": "annotate", "engine": "oracle"}, "clinical.intake.engine"),
        ({"mode": "shout"}, "clinical.intake"),
        ({"mode": "annotate", "temperature": 1}, "clinical.intake"),
    ],
)
def test_bad_intake_options_are_400s(
    gateway: ServerThread, worker: FakeWorker, intake: Any, param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        chat(gateway, MESSAGE, intake)
    assert caught.value.status_code == 400
    assert caught.value.body["param"] == param  # type: ignore[index]
    assert worker.behaviour.requests == []


def run_cli(*args: str, text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "intake", *args],
        input=text, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_cli_model_engine_against_an_openai_compatible_server(model_worker: FakeWorker) -> None:
    done = run_cli(
        "--engine", "model", "--url", f"{model_worker.url}/v1", "--model", "fake-model",
        text=MESSAGE,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["engine"] == "model"
    assert {p["text"] for p in result["perturbations"]} == {"gammy", "feaver"}


def test_cli_reports_a_model_failure_instead_of_falling_back(
    start_worker: Callable[..., FakeWorker],
) -> None:
    worker = start_worker(fail_with=503)
    done = run_cli(
        "--engine", "hybrid", "--url", f"{worker.url}/v1", "--model", "fake-model", text=MESSAGE
    )  # fmt: skip
    assert done.returncode == 1 and done.stdout == ""
    assert "answered 503" in done.stderr
