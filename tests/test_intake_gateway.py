"""Intake in the gateway, end to end through the openai SDK against a fake worker.

The real rules engine runs; the fake worker records exactly what the model would receive.
"""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.conftest import FakeWorker
from tests.fakes import ServerThread


def sdk(gateway: ServerThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="x", max_retries=0)


def chat(gateway: ServerThread, text: str, **extra: Any) -> Any:
    return sdk(gateway).chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": text}], **extra
    )


def sent_messages(worker: FakeWorker) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = worker.behaviour.requests[-1]["messages"]
    return messages


def test_annotate_is_the_default_and_leaves_the_patients_words(
    gateway: ServerThread, worker: FakeWorker
) -> None:
    text = "i have a feaver and my tummy is killing me tbh, for a few days"
    completion = chat(gateway, text)
    messages = sent_messages(worker)
    assert messages[-1] == {"role": "user", "content": text}
    assert messages[0]["role"] == "system" and "Intake note" in messages[0]["content"]
    intake = completion.model_extra["clinical"]["intake"]
    assert intake["mode"] == "annotate" and intake["language"] == "en"
    kinds = {p["subcategory"] for p in intake["perturbations"]}
    assert "formal.spelling_error" in kinds and "contextual.vague_expression" in kinds


def test_normalize_replaces_the_text_and_keeps_negations(
    gateway: ServerThread, worker: FakeWorker
) -> None:
    completion = chat(
        gateway,
        "no feaver but bad cought since monday",
        extra_body={"clinical": {"intake": "normalize"}},
    )
    corrected = sent_messages(worker)[-1]["content"]
    assert "fever" in corrected and "cough" in corrected and corrected.startswith("no ")
    assert "feaver" not in corrected
    assert completion.model_extra["clinical"]["intake"]["mode"] == "normalize"


def test_off_sends_the_request_untouched(gateway: ServerThread, worker: FakeWorker) -> None:
    completion = chat(gateway, "my tummy hurts lol", extra_body={"clinical": {"intake": "off"}})
    assert sent_messages(worker) == [{"role": "user", "content": "my tummy hurts lol"}]
    assert completion.model_extra["clinical"]["intake"] is None


def test_red_flag_adds_urgent_instruction_and_is_returned(
    gateway: ServerThread, worker: FakeWorker
) -> None:
    completion = chat(
        gateway, "it's probably nothing but my chest is crushing and my left arm is numb"
    )
    flags = completion.model_extra["clinical"]["red_flags"]
    assert any(flag["id"] == "cardiac_chest_pain" for flag in flags)
    assert "URGENT" in sent_messages(worker)[0]["content"]


def test_chinese_red_flag_in_normalize_mode(gateway: ServerThread, worker: FakeWorker) -> None:
    completion = chat(
        gateway, "不想活了，活着没意思", extra_body={"clinical": {"intake": "normalize"}}
    )
    flags = completion.model_extra["clinical"]["red_flags"]
    assert [flag["id"] for flag in flags] == ["suicidal_ideation_self_harm"]
    assert "URGENT" in sent_messages(worker)[0]["content"]


def test_existing_system_prompt_gets_the_note_appended(
    gateway: ServerThread, worker: FakeWorker
) -> None:
    sdk(gateway).chat.completions.create(
        model="fake-model",
        messages=[
            {"role": "system", "content": "You are a triage nurse."},
            {"role": "user", "content": [{"type": "text", "text": "headach for 3 days"}]},
        ],
    )
    messages = sent_messages(worker)
    assert len(messages) == 2
    assert messages[0]["content"].startswith("You are a triage nurse.\n\nIntake note")


def test_streaming_carries_intake_on_the_last_chunk(gateway: ServerThread) -> None:
    chunks = list(chat(gateway, "my chest hurts a bit", stream=True))
    clinical = chunks[-1].model_extra["clinical"]
    assert clinical["intake"]["mode"] == "annotate"


def test_bad_intake_mode_is_400(gateway: ServerThread) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        chat(gateway, "hi", extra_body={"clinical": {"intake": "shout"}})
    assert raised.value.body["param"] == "clinical.intake"  # type: ignore[index]


def intake(gateway: ServerThread, body: Any) -> httpx.Response:
    return httpx.post(f"{gateway.url}/v1/clinical/intake", json=body)


def test_intake_endpoint_in_both_languages(gateway: ServerThread) -> None:
    english = intake(gateway, {"text": "no fever, just a bad headache since yesterday"}).json()
    assert set(english) == {
        "language", "normalized_text", "perturbations", "emotion", "chief_complaint", "red_flags",
        "engine",
    }  # fmt: skip
    symptoms = {s["term"]: s["negated"] for s in english["chief_complaint"]["symptoms"]}
    assert symptoms.get("fever") is True and symptoms.get("headache") is False
    chinese = intake(gateway, {"text": "没发烧，就是咳嗽好几天了", "lang": "zh"}).json()
    assert chinese["language"] == "zh"
    mixed = intake(gateway, {"text": "我吃了ibuprofen还是头疼"})
    assert mixed.status_code == 200


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"text": ""}, "text"),
        ({"text": "   "}, "text"),
        ({"text": "abc\x00\x01def"}, "text"),
        ({"text": "x" * 30_000}, "text"),
        ({"lang": "en"}, "text"),
        ({"text": "hi", "lang": "fr"}, "lang"),
        ({"text": 42}, "text"),
    ],
)
def test_intake_endpoint_rejects_bad_input(
    gateway: ServerThread, body: dict[str, Any], param: str
) -> None:
    response = intake(gateway, body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_intake_endpoint_rejects_non_json(gateway: ServerThread) -> None:
    response = httpx.post(
        f"{gateway.url}/v1/clinical/intake",
        content=b"\xff\xfe\x00binary",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == 400
