"""The intake stage: analyse the patient's latest message and decide what the model sees.

Modes (deployment default, overridable per request with `"clinical": {"intake": MODE}`):
- off: nothing runs, nothing changes.
- annotate: the analysis becomes a short note in the system prompt; the user's words are
  untouched (the clinician-facing default: nothing the patient wrote is hidden).
- normalize: the last user message is replaced by its corrected text; the original stays
  in the stage's outcome for the audit record.
A red flag adds an urgent-care instruction to the system prompt in both active modes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from perturbation.analysis import IntakeResult
from perturbation.engine import IntakeEngine
from server.errors import InvalidRequest
from server.pipeline.prompt import intake_note, with_system_note
from server.settings import IntakeMode, IntakeSettings

MODES: tuple[IntakeMode, ...] = ("off", "annotate", "normalize")


@dataclass(frozen=True)
class IntakeOutcome:
    mode: IntakeMode
    messages: list[dict[str, Any]]
    analysis: IntakeResult | None = None
    original_text: str | None = None  # what the patient wrote, when normalize replaced it
    skipped: str | None = None  # why no analysis ran although the mode asked for one

    def extension(self) -> dict[str, Any] | None:
        """The response's `clinical.intake`."""
        if self.analysis is not None:
            return {"mode": self.mode, **self.analysis.to_json()}
        if self.skipped is not None:
            return {"mode": self.mode, "skipped": self.skipped}
        return None

    def red_flags(self) -> list[dict[str, Any]]:
        return [flag.to_json() for flag in self.analysis.red_flags] if self.analysis else []


def requested_mode(options: Any, default: IntakeMode) -> IntakeMode:
    """The mode for this request: `clinical.intake` if given (validated), else the default."""
    if options is None:
        return default
    if not isinstance(options, dict):
        raise InvalidRequest("'clinical' must be an object.", param="clinical")
    mode = options.get("intake", default)
    if mode not in MODES:
        raise InvalidRequest(
            f"clinical.intake must be one of {', '.join(MODES)}.", param="clinical.intake"
        )
    return mode


class IntakeStage:
    def __init__(self, engine: IntakeEngine, settings: IntakeSettings) -> None:
        self.engine = engine
        self.settings = settings

    def warm_up(self) -> None:
        """Load lexicons and compile patterns at start-up, not on the first patient's request."""
        self.engine.analyze("I have had a feaver for a few days, no cough.", "en")
        self.engine.analyze("发烧好几天了，没有咳嗽。", "zh")

    def run(self, messages: list[dict[str, Any]], mode: IntakeMode) -> IntakeOutcome:
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
        analysis = self.engine.analyze(text)
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
        return IntakeOutcome(mode, updated, analysis, original)


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
