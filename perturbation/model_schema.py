"""What the `model` engine asks the served model: the prompt and the JSON schema it must fill.

The schema is sent as an OpenAI `response_format` of type `json_schema`, which vLLM turns
into constrained decoding: the reply always parses, whatever the model. What it asks for is
deliberately less than the API returns, because models are good at reading and bad at
bookkeeping:

* quotes, not offsets: the model copies the patient's words and the engine finds them in
  the message (a quote that is not there is dropped, so no evidence is invented);
* ids, not labels: red flags are picked from our catalogue (their labels come from the
  lexicon) and subcategories from the taxonomy;
* no negation field: whether a symptom is denied is decided by `perturbation.negation`,
  the same rules the `rules` engine uses, so the two engines cannot disagree on "no fever".

Every string and list has a maximum length so a small or confused model cannot run on
until its token budget cuts the JSON short.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from perturbation.analysis import EmotionLabel
from perturbation.lexicon import load
from perturbation.taxonomy import TAXONOMY

EMOTION_LABELS: tuple[EmotionLabel, ...] = ("neutral", "positive", "negative", "repressed", "mixed")
_QUOTE = {"type": "string", "maxLength": 160}
_SHORT = {"type": "string", "maxLength": 60}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


@cache
def red_flag_catalogue() -> dict[str, str]:
    """Red-flag id -> label, from the same lexicon the rules engine uses."""
    return {entry["id"]: entry["label"] for entry in load("red_flags")["flags"]}


@cache
def intake_schema() -> dict[str, Any]:
    finding = _object(
        {
            "subcategory": {"enum": [sub.id for sub in TAXONOMY]},
            "quote": _QUOTE,
            "correction": _nullable(_QUOTE),
        }
    )
    emotion = _object(
        {
            "label": {"enum": list(EMOTION_LABELS)},
            "intensity": {"type": "number", "minimum": 0, "maximum": 1},
            "quotes": {"type": "array", "items": _QUOTE, "maxItems": 3},
        }
    )
    symptom = _object({"term": _SHORT, "quote": _QUOTE})
    red_flag = _object(
        {
            "id": {"enum": list(red_flag_catalogue())},
            "urgency": {"enum": ["emergency", "urgent"]},
            "quote": _QUOTE,
        }
    )
    return _object(
        {
            "perturbations": {"type": "array", "items": finding, "maxItems": 12},
            "emotion": emotion,
            "symptoms": {"type": "array", "items": symptom, "maxItems": 10},
            "site": _nullable(_SHORT),
            "onset": _nullable(_SHORT),
            "duration": _nullable(_SHORT),
            "severity": _nullable(_SHORT),
            "red_flags": {"type": "array", "items": red_flag, "maxItems": 5},
        }
    )


@cache
def system_prompt() -> str:
    """Short on purpose (about 400 tokens): the kinds and flags are named by their ids, which
    say what they mean, and the schema's enums hold the model to them while it writes."""
    kinds = ", ".join(sub.id for sub in TAXONOMY)
    flags = ", ".join(red_flag_catalogue())
    return (
        "Read the patient's message (English or Chinese) and fill in the JSON analysis for "
        "the clinician. Quote the patient's exact words. Never add a symptom the patient "
        "did not mention; never make a denied symptom present.\n"
        "perturbations: where the wording departs from clear clinical language (slang, "
        "dialect, typos, emotion, minimising, self-diagnosis, irrelevant detail, vague "
        "amounts, fragments, another person's perspective, events out of order): kind, "
        f"quote, standard clinical wording or null. Kinds: {kinds}.\n"
        "emotion: neutral, positive, negative, repressed (minimising) or mixed; intensity "
        "0 to 1; quotes.\n"
        "symptoms: each symptom mentioned, present or denied, as a standard English "
        "clinical term with its quote; site, onset, duration, severity: the patient's "
        "words, or null.\n"
        f"red_flags: only for a possible emergency, one of: {flags}."
    )


def messages_for(text: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": system_prompt()},
        {"role": "user", "content": text},
    ]
