"""The `model` engine: the served model reads the message, the engine grounds what it says.

For GPU deployments, where a model call per message is affordable and a model reads
context that patterns miss (sarcasm, long-range self-diagnosis, unusual slang). The model
proposes, the engine disposes:

* every quote is looked up in the message; what cannot be found is dropped, and the span
  of what is found is ours, so spans are exact offsets into the original text;
* a symptom's `negated` comes from `perturbation.negation`, not from the model, and a red
  flag whose evidence lies in a denial ("no chest pain") is dropped;
* a correction that names a symptom the message does not contain is dropped (a model must
  not "correct" "tummy ache" into "abdominal pain and vomiting");
* the corrected text is built by `perturbation.normalize` from the grounded corrections,
  with the same negation guarantees as the rules engine;
* red-flag labels come from our lexicon and ICD-10-CM codes from our symptom lexicon, never
  from the model; an emotion, site, onset, duration or severity is kept only when the
  model quotes the words that show it.

The transport is injected (`Completer`): the gateway passes one that goes through its
worker pool, the CLI one that calls an OpenAI-compatible URL (`perturbation.model_client`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from difflib import SequenceMatcher
from functools import cache
from typing import Any

from perturbation.analysis import (
    ChiefComplaint,
    Emotion,
    EmotionLabel,
    Finding,
    IntakeResult,
    Language,
    RedFlag,
    Span,
    Symptom,
)
from perturbation.document import Document
from perturbation.engine import EngineName
from perturbation.lexicon import load
from perturbation.model_schema import (
    EMOTION_LABELS,
    intake_schema,
    messages_for,
    red_flag_catalogue,
)
from perturbation.normalize import normalize
from perturbation.symptoms import find_symptoms

Completer = Callable[[list[dict[str, str]], dict[str, Any]], Awaitable[str]]
"""(messages, JSON schema) -> the model's reply text, which the schema constrained."""

MODEL_CONFIDENCE = 0.6
"""Confidence given to a model finding: models' own confidence figures are not calibrated,
and a rules finding (0.7-0.95) should win an overlap in the corrected text."""


_RESPELLING = 0.6
"""How alike a symptom word in a correction and a quoted word must be for the correction to
count as a respelling (difflib ratio: "feaver"/"fever" 0.91, "cought"/"cough" 0.91)."""


class ModelEngineError(Exception):
    """The model could not be asked or its answer could not be used; callers fall back."""


class ModelEngine:
    name: EngineName = "model"

    def __init__(self, complete: Completer) -> None:
        self.complete = complete

    async def analyze_async(self, text: str, language: Language | None = None) -> IntakeResult:
        doc = Document.of(text, language)
        try:
            reply = await self.complete(messages_for(text), intake_schema())
        except ModelEngineError:
            raise
        except Exception as exc:  # the transport's failures are many; the caller's are one
            raise ModelEngineError(f"the model could not be asked: {exc}") from exc
        return ground(doc, parse_reply(reply))


def parse_reply(reply: str) -> dict[str, Any]:
    """The reply as a dict with the schema's top-level shape, or ModelEngineError."""
    try:
        data = json.loads(reply)
    except ValueError as exc:
        raise ModelEngineError(f"the model's answer is not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ModelEngineError("the model's answer is not a JSON object")
    required = intake_schema()["required"]
    missing = [key for key in required if key not in data]
    if missing:
        raise ModelEngineError(f"the model's answer lacks {', '.join(missing)}")
    return data


class _Locator:
    """Finds quotes in the message: exact first, then ignoring case; repeated quotes of the
    same kind take successive occurrences."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.used: set[tuple[str, int]] = set()

    def find(self, quote: Any, kind: str) -> Span | None:
        if not isinstance(quote, str) or not quote.strip():
            return None
        quote = quote.strip()
        for haystack, needle in ((self.doc.text, quote), (self.doc.lower, quote.lower())):
            if len(haystack) != len(self.doc.text):
                continue  # lower-casing changed lengths: offsets would not map back
            start = haystack.find(needle)
            while start != -1 and (kind, start) in self.used:
                start = haystack.find(needle, start + 1)
            if start != -1:
                self.used.add((kind, start))
                end = start + len(needle)
                return Span(start, end, self.doc.text[start:end])
        return None


def _items(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = data.get(key)
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _text_or_none(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _symptom_terms(text: str, language: Language) -> set[str]:
    return {mention.term for mention in find_symptoms(Document.of(text, language))}


def _invents_symptom(quote: str, correction: str, present: set[str], language: Language) -> bool:
    """Whether the correction names a symptom that is neither in the message nor a respelling
    of the quoted words ("feaver" -> "fever" is a correction; "tummy" -> "abdomen with
    vomiting" invents vomiting)."""
    words = quote.lower().split() if language == "en" else [quote]
    for mention in find_symptoms(Document.of(correction, language)):
        if mention.term in present:
            continue
        written = mention.text.lower()
        if max(SequenceMatcher(None, written, word).ratio() for word in words) < _RESPELLING:
            return True
    return False


def _findings(doc: Document, data: dict[str, Any], locate: _Locator) -> list[Finding]:
    present = _symptom_terms(doc.text, doc.language)
    findings = []
    for item in _items(data, "perturbations"):
        subcategory = item.get("subcategory")
        span = locate.find(item.get("quote"), f"p:{subcategory}")
        if span is None or not isinstance(subcategory, str):
            continue
        correction = _text_or_none(item.get("correction"))
        if correction is not None and _invents_symptom(
            span.text, correction, present, doc.language
        ):
            correction = None
        if correction == span.text:
            correction = None
        try:
            findings.append(
                Finding(subcategory, span.start, span.end, span.text, MODEL_CONFIDENCE, correction)
            )
        except ValueError:
            continue  # an id outside the taxonomy: the schema forbids it, a proxy might not
    return sorted(findings, key=lambda f: (f.start, f.end, f.subcategory))


def _emotion(data: dict[str, Any], locate: _Locator) -> Emotion:
    raw: dict[str, Any] = data["emotion"] if isinstance(data.get("emotion"), dict) else {}
    label: EmotionLabel = "neutral"
    for known in EMOTION_LABELS:
        if raw.get("label") == known:
            label = known
    intensity = raw.get("intensity")
    strength = min(max(float(intensity), 0.0), 1.0) if isinstance(intensity, int | float) else 0.0
    quotes = raw["quotes"] if isinstance(raw.get("quotes"), list) else []
    evidence = tuple(span for q in quotes if (span := locate.find(q, "emotion")) is not None)
    if label == "neutral" or not evidence:
        return Emotion("neutral", 0.0)  # an emotion nobody can point to is not reported
    return Emotion(label, strength, evidence)


@cache
def _icd10_by_term() -> dict[str, tuple[str, str | None]]:
    """Lower-cased standard term -> (term as the lexicon spells it, its confident code)."""
    return {
        str(entry["term"]).lower(): (str(entry["term"]), entry.get("icd10"))
        for entry in load("symptoms")["symptoms"]
    }


def _complaint(doc: Document, data: dict[str, Any], locate: _Locator) -> ChiefComplaint:
    symptoms = []
    for item in _items(data, "symptoms"):
        term = _text_or_none(item.get("term"))
        span = locate.find(item.get("quote"), "symptom")
        if term is None or span is None:
            continue
        term, code = _icd10_by_term().get(term.lower(), (term, None))
        negated = doc.is_negated(span.start, span.end)
        symptoms.append(Symptom(term, span.text, span.start, span.end, negated, code))
    symptoms.sort(key=lambda s: s.start)

    def stated(key: str) -> str | None:
        span = locate.find(data.get(key), key)
        return span.text if span is not None else None

    return ChiefComplaint(
        tuple(symptoms),
        site=stated("site"),
        onset=stated("onset"),
        duration=stated("duration"),
        severity=stated("severity"),
    )


def _red_flags(doc: Document, data: dict[str, Any], locate: _Locator) -> list[RedFlag]:
    catalogue = red_flag_catalogue()
    flags: dict[str, RedFlag] = {}
    for item in _items(data, "red_flags"):
        flag_id, urgency = item.get("id"), item.get("urgency")
        span = locate.find(item.get("quote"), f"flag:{flag_id}")
        if flag_id not in catalogue or urgency not in ("emergency", "urgent") or span is None:
            continue
        if doc.is_negated(span.start, span.end) or flag_id in flags:
            continue  # evidence inside a denial, or the same flag twice
        flags[flag_id] = RedFlag(flag_id, catalogue[flag_id], urgency, span)
    return sorted(flags.values(), key=lambda f: (f.urgency != "emergency", f.evidence.start))


def ground(doc: Document, data: dict[str, Any]) -> IntakeResult:
    """The model's proposal turned into an IntakeResult that keeps our guarantees."""
    locate = _Locator(doc)
    findings = _findings(doc, data, locate)
    return IntakeResult(
        language=doc.language,
        text=doc.text,
        normalized_text=normalize(doc, findings),
        perturbations=tuple(findings),
        emotion=_emotion(data, locate),
        chief_complaint=_complaint(doc, data, locate),
        red_flags=tuple(_red_flags(doc, data, locate)),
        engine="model",
    )
