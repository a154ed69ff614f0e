"""The intake stage: analyse the patient's latest message and decide what the model sees.

Modes (the API key's default, else the deployment's; overridable per request with
`"clinical": {"intake": MODE}`):
- off: nothing runs, nothing changes.
- annotate: the analysis becomes a short note in the system prompt; the user's words are
  untouched (the clinician-facing default: nothing the patient wrote is hidden).
- normalize: the last user message is replaced by its corrected text; the original stays
  in the stage's outcome for the audit record.
A red flag adds an urgent-care instruction to the system prompt in both active modes.

Engines (deployment default, overridable per request with
`"clinical": {"intake": {"mode": MODE, "engine": ENGINE}}`): `rules` inline, or `model` /
`hybrid`, which ask the served model through the worker pool. When the model cannot answer
(timeout, worker down, unusable JSON) the rules' analysis is used and the response says so
in `clinical.intake.fallback`: red flags must never be lost to a model outage.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from perturbation.analysis import IntakeResult, Language
from perturbation.engine import ENGINES, IntakeEngine, RulesEngine, build_engine
from perturbation.model_engine import Completer, ModelEngineError
from server.errors import InvalidRequest
from server.pipeline.prompt import intake_note, with_system_note
from server.pipeline.validation import one_of, only_fields
from server.settings import IntakeEngineName, IntakeMode, IntakeSettings

MODES: tuple[IntakeMode, ...] = ("off", "annotate", "normalize")
log = logging.getLogger("clinserve.intake")


@dataclass(frozen=True)
class IntakeRequest:
    """What a request asked of the intake stage, defaults filled in."""

    mode: IntakeMode
    engine: IntakeEngineName


@dataclass(frozen=True)
class Analysis:
    result: IntakeResult
    fallback: str | None = None  # why the rules answered although another engine was asked


@dataclass(frozen=True)
class IntakeOutcome:
    mode: IntakeMode
    messages: list[dict[str, Any]]
    analysis: IntakeResult | None = None
    original_text: str | None = None  # what the patient wrote, when normalize replaced it
    skipped: str | None = None  # why no analysis ran although the mode asked for one
    fallback: str | None = None  # why the rules answered instead of the engine asked for

    def extension(self) -> dict[str, Any] | None:
        """The response's `clinical.intake`."""
        if self.analysis is not None:
            extension = {"mode": self.mode, **self.analysis.to_json()}
            if self.fallback is not None:
                extension["fallback"] = self.fallback
            return extension
        if self.skipped is not None:
            return {"mode": self.mode, "skipped": self.skipped}
        return None

    def red_flags(self) -> list[dict[str, Any]]:
        return [flag.to_json() for flag in self.analysis.red_flags] if self.analysis else []


def requested_intake(
    options: Any, settings: IntakeSettings, key_mode: IntakeMode | None = None
) -> IntakeRequest:
    """Mode and engine for this request from `clinical.intake`, which is either a mode name
    or {"mode"?, "engine"?}; a mode left out is the key's default (`key_mode`), else the
    deployment's, and an engine left out is the deployment's."""
    default_mode = key_mode or settings.mode
    if options is None:
        return IntakeRequest(default_mode, settings.engine)
    if not isinstance(options, dict):
        raise InvalidRequest("'clinical' must be an object.", param="clinical")
    intake = options.get("intake", default_mode)
    if not isinstance(intake, dict):
        intake = {"mode": intake}
    only_fields(intake, {"mode", "engine"}, "clinical.intake")
    mode = one_of(intake.get("mode", default_mode), MODES, "clinical.intake")
    engine = one_of(intake.get("engine", settings.engine), ENGINES, "clinical.intake.engine")
    return IntakeRequest(mode, engine)


class IntakeStage:
    def __init__(
        self, rules: RulesEngine, settings: IntakeSettings, complete: Completer | None = None
    ) -> None:
        """`complete` asks the served model; without it only the rules engine is offered."""
        self.rules = rules
        self.settings = settings
        self.engines: dict[str, IntakeEngine] = {
            name: build_engine(name, rules, complete)
            for name in ENGINES
            if name == "rules" or complete is not None
        }

    def warm_up(self) -> None:
        """Load lexicons and compile patterns at start-up, not on the first patient's request."""
        self.rules.analyze("I have had a feaver for a few days, no cough.", "en")
        self.rules.analyze("发烧好几天了，没有咳嗽。", "zh")

    async def analyze(
        self, text: str, language: Language | None, engine: IntakeEngineName
    ) -> Analysis:
        """One message through the chosen engine, falling back to the rules on a model
        failure (logged without the patient's text)."""
        chosen = self.engines.get(engine)
        if chosen is None:
            raise InvalidRequest(
                f"The {engine} intake engine is not available here.",
                param="clinical.intake.engine",
            )
        try:
            async with asyncio.timeout(self.settings.model_timeout_s):
                return Analysis(await chosen.analyze_async(text, language))
        except (ModelEngineError, TimeoutError) as exc:
            reason = str(exc) or f"no answer within {self.settings.model_timeout_s:g} s"
            log.warning("intake engine %s failed (%s); rules used", engine, reason)
            return Analysis(self.rules.analyze(text, language), f"{engine} engine: {reason}")

    async def run(self, messages: list[dict[str, Any]], request: IntakeRequest) -> IntakeOutcome:
        mode = request.mode
        if mode == "off":
            return IntakeOutcome(mode, messages)
        index = _last_user_index(messages)
        if index is None:
            return IntakeOutcome(mode, messages, skipped="no user message")
        text = _text_of(messages[index].get("content"))
        if not text.strip():
            return IntakeOutcome(mode, messages, skipped="no text in the last user message")
        if len(text) > self.settings.max_chars:
            return IntakeOutcome(
                mode, messages, skipped=f"message longer than {self.settings.max_chars} chars"
            )
        analyzed = await self.analyze(text, None, request.engine)
        analysis = analyzed.result
        updated = list(messages)
        original = None
        if mode == "normalize" and analysis.normalized_text != text:
            updated[index] = {**messages[index], "content": _replace_text(
                messages[index].get("content"), analysis.normalized_text
            )}  # fmt: skip
            original = text
        note = intake_note(analysis, annotate=mode == "annotate")
        if note:
            updated = with_system_note(updated, note)
        return IntakeOutcome(mode, updated, analysis, original, fallback=analyzed.fallback)


def last_user_text(messages: list[dict[str, Any]]) -> str | None:
    """The text of the latest user message (text parts joined), None without one."""
    index = _last_user_index(messages)
    return None if index is None else _text_of(messages[index].get("content"))


def _last_user_index(messages: list[dict[str, Any]]) -> int | None:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].get("role") == "user":
            return index
    return None


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part.get("text", "") for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )  # fmt: skip
    return ""


def _replace_text(content: Any, text: str) -> Any:
    """Corrected text in place of the text parts; images and other parts are kept."""
    if isinstance(content, list):
        others = [p for p in content if not (isinstance(p, dict) and p.get("type") == "text")]
        return [{"type": "text", "text": text}, *others]
    return text
