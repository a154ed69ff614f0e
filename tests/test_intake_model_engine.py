"""The `model` and `hybrid` intake engines, with a scripted model in place of a worker.

What is under test is the grounding: whatever the model says, spans are exact offsets into
the message, invented evidence is dropped, negation is the rules' verdict, labels and codes
come from our lexicons. The real served model answers in tests/test_vllm_integration.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from perturbation.engine import RulesEngine, build_engine
from perturbation.hybrid import HybridEngine, merge
from perturbation.model_engine import ModelEngine, ModelEngineError
from perturbation.model_schema import intake_schema, red_flag_catalogue, system_prompt
from perturbation.taxonomy import TAXONOMY


def answer(**fields: Any) -> dict[str, Any]:
    """A schema-shaped model answer, empty except for `fields`."""
    base: dict[str, Any] = {
        "perturbations": [],
        "emotion": {"label": "neutral", "intensity": 0, "quotes": []},
        "symptoms": [],
        "site": None,
        "onset": None,
        "duration": None,
        "severity": None,
        "red_flags": [],
    }
    return {**base, **fields}


class ScriptedModel:
    """A Completer that records what it was asked and replies with a fixed text."""

    def __init__(self, reply: dict[str, Any] | str) -> None:
        self.reply = reply if isinstance(reply, str) else json.dumps(reply, ensure_ascii=False)
        self.asked: list[tuple[list[dict[str, str]], dict[str, Any]]] = []

    async def __call__(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> str:
        self.asked.append((messages, schema))
        return self.reply


async def analyze(text: str, reply: dict[str, Any] | str) -> Any:
    return await ModelEngine(ScriptedModel(reply)).analyze_async(text)


def spans_are_exact(result: Any) -> bool:
    text = result.text
    items = [*result.perturbations, *result.chief_complaint.symptoms]
    ok = all(text[item.start : item.end] == item.text for item in items)
    flags = [flag.evidence for flag in result.red_flags] + list(result.emotion.evidence)
    return ok and all(text[span.start : span.end] == span.text for span in flags)


async def test_the_model_is_asked_with_the_message_and_the_schema() -> None:
    model = ScriptedModel(answer())
    await ModelEngine(model).analyze_async("tummy ache since yesterday")
    messages, schema = model.asked[0]
    assert messages == [
        {"role": "system", "content": system_prompt()},
        {"role": "user", "content": "tummy ache since yesterday"},
    ]
    assert schema == intake_schema()


async def test_quotes_become_exact_spans_and_invented_quotes_are_dropped() -> None:
    text = "i have a feaver and my tummy is killing me"
    result = await analyze(
        text,
        answer(
            perturbations=[
                {"subcategory": "formal.spelling_error", "quote": "feaver", "correction": "fever"},
                {"subcategory": "formal.internet_slang", "quote": "lol", "correction": None},
                {"subcategory": "formal.dialect", "quote": "TUMMY", "correction": "abdomen"},
            ]
        ),
    )
    found = {(f.subcategory, f.text, f.start) for f in result.perturbations}
    assert found == {("formal.spelling_error", "feaver", 9), ("formal.dialect", "tummy", 23)}
    assert result.engine == "model" and spans_are_exact(result)
    assert "fever" in result.normalized_text and "abdomen" in result.normalized_text


async def test_a_repeated_quote_takes_the_next_occurrence() -> None:
    text = "a bit of pain, then a bit more pain"
    vague = {"subcategory": "contextual.vague_expression", "quote": "a bit", "correction": None}
    result = await analyze(text, answer(perturbations=[vague, vague]))
    assert [f.start for f in result.perturbations] == [0, 20]


async def test_negation_is_decided_by_the_rules_not_the_model() -> None:
    result = await analyze(
        "no fever but a bad cough",
        answer(symptoms=[{"term": "Fever", "quote": "fever"}, {"term": "cough", "quote": "cough"}]),
    )
    symptoms = {s.term: s for s in result.chief_complaint.symptoms}
    assert symptoms["fever"].negated and not symptoms["cough"].negated
    assert symptoms["fever"].icd10 == "R50.9"  # from our lexicon, matched on the term


async def test_chinese_quotes_and_negation() -> None:
    result = await analyze(
        "没发烧，就是咳嗽三天了",
        answer(
            symptoms=[{"term": "fever", "quote": "发烧"}, {"term": "cough", "quote": "咳嗽"}],
            duration="三天",
        ),
    )
    symptoms = {s.term: s.negated for s in result.chief_complaint.symptoms}
    assert symptoms == {"fever": True, "cough": False}
    assert result.language == "zh" and result.chief_complaint.duration == "三天"


async def test_a_correction_may_not_introduce_a_symptom_or_drop_a_negation() -> None:
    result = await analyze(
        "no feaver, tummy hurts",
        answer(
            perturbations=[
                {
                    "subcategory": "formal.spelling_error",
                    "quote": "no feaver",
                    "correction": "fever",
                },
                {
                    "subcategory": "formal.dialect",
                    "quote": "tummy",
                    "correction": "abdomen with vomiting",
                },
            ]  # fmt: skip
        ),
    )
    corrections = {f.text: f.correction for f in result.perturbations}
    assert corrections["tummy"] is None  # vomiting is nowhere in the message
    assert result.normalized_text.startswith("no ")


async def test_red_flags_are_grounded_labelled_and_never_from_a_denial() -> None:
    result = await analyze(
        "no chest pain, but my face drooped and my speech is slurred",
        answer(
            red_flags=[
                {"id": "cardiac_chest_pain", "urgency": "emergency", "quote": "chest pain"},
                {"id": "stroke_signs", "urgency": "emergency", "quote": "face drooped"},
                {"id": "stroke_signs", "urgency": "urgent", "quote": "speech is slurred"},
                {"id": "made_up", "urgency": "emergency", "quote": "speech"},
            ]
        ),
    )
    assert [(f.id, f.urgency) for f in result.red_flags] == [("stroke_signs", "emergency")]
    assert result.red_flags[0].label == red_flag_catalogue()["stroke_signs"]
    assert spans_are_exact(result)


async def test_emotion_and_qualifiers_need_quoted_evidence() -> None:
    unquoted = await analyze(
        "headache for 3 days",
        answer(emotion={"label": "negative", "intensity": 1, "quotes": []}, site="left temple"),
    )
    assert unquoted.emotion.label == "neutral" and unquoted.chief_complaint.site is None
    quoted = await analyze(
        "so scared, headache for 3 days",
        answer(
            emotion={"label": "negative", "intensity": 7, "quotes": ["so scared"]},
            duration="3 days",
        ),
    )
    assert quoted.emotion.label == "negative" and quoted.emotion.intensity == 1.0
    assert quoted.chief_complaint.duration == "3 days"


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"perturbations": []}', "lacks emotion"),
    ],
)
async def test_an_unusable_answer_is_a_model_engine_error(reply: str, message: str) -> None:
    with pytest.raises(ModelEngineError, match=message):
        await analyze("cough", reply)


async def test_transport_failures_become_model_engine_errors() -> None:
    async def broken(_messages: list[dict[str, str]], _schema: dict[str, Any]) -> str:
        raise ConnectionResetError("worker went away")

    with pytest.raises(ModelEngineError, match="worker went away"):
        await ModelEngine(broken).analyze_async("cough")


def test_the_schema_is_strict_and_names_our_ids() -> None:
    schema = intake_schema()

    def objects(node: Any) -> list[dict[str, Any]]:
        if isinstance(node, dict):
            own = [node] if node.get("type") == "object" else []
            return own + [o for value in node.values() for o in objects(value)]
        if isinstance(node, list):
            return [o for value in node for o in objects(value)]
        return []

    for obj in objects(schema):
        assert obj["additionalProperties"] is False
        assert obj["required"] == list(obj["properties"])
    finding = schema["properties"]["perturbations"]["items"]["properties"]
    assert finding["subcategory"]["enum"] == [sub.id for sub in TAXONOMY]
    flag = schema["properties"]["red_flags"]["items"]["properties"]
    assert flag["id"]["enum"] == list(red_flag_catalogue())
    assert "stroke_signs" in flag["id"]["enum"]


def test_model_engines_need_a_model_to_ask() -> None:
    rules = RulesEngine()
    assert build_engine("rules", rules) is rules
    with pytest.raises(ValueError, match="needs a model"):
        build_engine("model", rules)
    assert isinstance(build_engine("hybrid", rules, ScriptedModel(answer())), HybridEngine)


async def test_hybrid_keeps_the_rules_and_adds_what_the_model_saw() -> None:
    text = "i have a feaver lol, my ankle is gammy and chest feels tight"
    model = ScriptedModel(
        answer(
            perturbations=[
                {"subcategory": "formal.spelling_error", "quote": "feaver", "correction": "fevr"},
                {"subcategory": "formal.dialect", "quote": "gammy", "correction": "injured"},
            ],
            red_flags=[
                {"id": "cardiac_chest_pain", "urgency": "emergency", "quote": "chest feels tight"}
            ],
        )
    )
    rules = RulesEngine().analyze(text)
    result = await HybridEngine(RulesEngine(), ModelEngine(model)).analyze_async(text)
    assert result.engine == "hybrid" and spans_are_exact(result)
    spelling = [f for f in result.perturbations if f.subcategory == "formal.spelling_error"]
    assert [f.correction for f in spelling] == ["fever"]  # the rules' finding wins the overlap
    assert set(rules.perturbations) <= set(result.perturbations)
    assert any(f.text == "gammy" for f in result.perturbations)
    flags = {f.id: f.urgency for f in result.red_flags}
    assert flags["cardiac_chest_pain"] == "emergency"  # raised from the rules' verdict
    assert {f.id for f in rules.red_flags} <= set(flags)


async def test_hybrid_never_lowers_urgency_or_drops_a_rules_flag() -> None:
    text = "crushing chest pain going down my left arm and I'm sweating"
    rules = RulesEngine().analyze(text)
    assert [f.urgency for f in rules.red_flags] == ["emergency"]
    model = await analyze(
        text,
        answer(red_flags=[{"id": "cardiac_chest_pain", "urgency": "urgent", "quote": "chest"}]),
    )
    merged = merge(rules, model)
    assert merged.red_flags == rules.red_flags
