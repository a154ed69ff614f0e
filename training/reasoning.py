"""PrMed's five-step reasoning chain as an SFT target, built from our own intake engine.

PrMed fine-tunes on answers that first read the patient (emotion, perturbations, a corrected
restatement, the chief complaint) and only then reason medically, which makes the model robust
to how patients actually write. Steps 1-4 come from the deterministic rules engine run on the
patient's message, so the targets agree with what the gateway shows clinicians; step 5 is the
reference answer.

The layout is a contract with the GRPO format reward, so it is fixed. Steps 1-4 are one line
each (newlines in their content become spaces); step 5's heading ends its line and the answer
follows, unchanged, from the next line:

    1. Emotion perception: negative (intensity 0.68); cues: "scared"
    2. Perturbation detection: formal.spelling_error "ibuprofin" -> "ibuprofen"; ...
    3. Expression correction: <the message in standard wording>
    4. Chief complaint extraction: chest pain; onset: this morning; denies fever; red flags: ...
    5. Medical reasoning:
    <answer>

A Chinese message gets the Chinese headings of `STEPS_ZH` with a full-width colon
(`1. 情绪感知：消极（强度 0.68）；线索：“担心”`); perturbation ids, symptom terms and red-flag
labels stay in English, as the engine reports them. Empty steps say `none` / `无`.

`STEP_PATTERN` matches a text that starts (after optional whitespace) with step 1 and has the
five numbered headings of one language in order, each at the start of a line, followed by some
content; use it with `.match` or `.search` (the same, as it is anchored).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any, Literal

from perturbation.analysis import IntakeResult
from perturbation.engine import RulesEngine

Language = Literal["en", "zh"]
STEPS: tuple[str, ...] = (
    "Emotion perception",
    "Perturbation detection",
    "Expression correction",
    "Chief complaint extraction",
    "Medical reasoning",
)
STEPS_ZH: tuple[str, ...] = ("情绪感知", "扰动识别", "表达纠正", "主诉提取", "医学推理")
_EMOTION_ZH = {
    "neutral": "中性",
    "positive": "积极",
    "negative": "消极",
    "repressed": "压抑",
    "mixed": "混合",
}


def _step_pattern() -> re.Pattern[str]:
    def layout(titles: tuple[str, ...]) -> str:
        steps = [rf"{n}\. {re.escape(title)}[:：]\s*\S" for n, title in enumerate(titles, 1)]
        return ".*?^".join(steps)  # step 1 follows the leading whitespace, the rest a newline

    return re.compile(rf"\A\s*(?:{layout(STEPS)}|{layout(STEPS_ZH)})", re.MULTILINE | re.DOTALL)


STEP_PATTERN: re.Pattern[str] = _step_pattern()


@cache
def _engine() -> RulesEngine:
    """Built on first use and kept: building it loads every lexicon (seconds)."""
    return RulesEngine()


def five_step_target(patient_message: str, answer: str, language: Language | None = None) -> str:
    """The five-step chain for `patient_message`, ending with `answer` as step 5.

    `language` (default: detected from the message) picks the engine's lexicons and the
    headings.
    """
    if not patient_message.strip():
        raise ValueError("the patient's message is empty")
    if not answer.strip():
        raise ValueError("the answer (step 5) is empty")
    intake = _engine().analyze(patient_message, language)
    zh = intake.language == "zh"
    titles, colon = (STEPS_ZH, "：") if zh else (STEPS, ": ")
    contents = [
        _emotion(intake, zh),
        _perturbations(intake, zh),
        _one_line(intake.normalized_text) or ("无" if zh else "none"),
        _chief_complaint(intake, zh),
    ]
    lines = [
        f"{n}. {title}{colon}{text}"
        for n, (title, text) in enumerate(zip(titles[:4], contents, strict=True), 1)
    ]
    return "\n".join([*lines, f"5. {titles[4]}{colon.strip()}", answer.strip()])


def with_reasoning(record: dict[str, Any]) -> dict[str, Any]:
    """A chat record whose final assistant answer is rewritten as the five-step chain.

    The patient's message is the last user turn before that answer; the record is not changed.
    """
    messages = record.get("messages")
    if not messages or messages[-1].get("role") != "assistant":
        raise ValueError("a chat record must end with the assistant's answer")
    patient = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), None)
    if patient is None:
        raise ValueError("a chat record needs a user message to reason about")
    target = five_step_target(patient, messages[-1]["content"])
    return {**record, "messages": [*messages[:-1], {**messages[-1], "content": target}]}


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _quoted(text: str, zh: bool) -> str:
    return f"“{_one_line(text)}”" if zh else f'"{_one_line(text)}"'


def _emotion(intake: IntakeResult, zh: bool) -> str:
    emotion = intake.emotion
    cues = ", ".join(_quoted(span.text, zh) for span in emotion.evidence)
    if zh:
        text = f"{_EMOTION_ZH[emotion.label]}（强度 {emotion.intensity:.2f}）"
        return text + (f"；线索：{cues}" if cues else "")
    return f"{emotion.label} (intensity {emotion.intensity:.2f})" + (
        f"; cues: {cues}" if cues else ""
    )


def _perturbations(intake: IntakeResult, zh: bool) -> str:
    found = []
    for finding in intake.perturbations:
        item = f"{finding.subcategory} {_quoted(finding.text, zh)}"
        if finding.correction is not None:
            item += f" -> {_quoted(finding.correction, zh)}"
        found.append(item)
    if not found:
        return "无" if zh else "none"
    return ("；" if zh else "; ").join(found)


def _chief_complaint(intake: IntakeResult, zh: bool) -> str:
    text = _one_line(intake.chief_complaint.summary) or ("无" if zh else "none")
    flags = ", ".join(f"{flag.label} ({flag.urgency})" for flag in intake.red_flags)
    if flags:
        text += f"；危险信号：{flags}" if zh else f"; red flags: {flags}"
    return text
