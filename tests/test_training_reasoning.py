"""training.reasoning: the five-step target's fixed layout, built by the real rules engine."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from training.reasoning import STEP_PATTERN, STEPS, STEPS_ZH, five_step_target, with_reasoning

ANSWER = "Rest and drink fluids.\n1. See a doctor if it lasts a week."


def steps_of(target: str) -> list[str]:
    return target.split("\n")


def test_english_layout_for_a_plain_message() -> None:
    target = five_step_target("My head hurts. No fever.", ANSWER)
    assert target == "\n".join(
        [
            "1. Emotion perception: neutral (intensity 0.00)",
            "2. Perturbation detection: none",
            "3. Expression correction: My head hurts. No fever.",
            "4. Chief complaint extraction: headache; site: head; denies fever",
            "5. Medical reasoning:",
            ANSWER,
        ]
    )


def test_english_perturbed_message_is_read_and_corrected_keeping_negation() -> None:
    message = "tbh my tummy is killing me,\nno fever, took some ibuprofin. I'm so scared"
    lines = steps_of(five_step_target(message, ANSWER))
    assert lines[0] == '1. Emotion perception: negative (intensity 0.68); cues: "scared"'
    assert lines[1].startswith("2. Perturbation detection: ")
    assert 'formal.spelling_error "ibuprofin" -> "ibuprofen"' in lines[1]
    assert 'formal.internet_slang "tummy" -> "abdomen"' in lines[1]
    assert lines[2] == (
        "3. Expression correction: my abdomen is causing severe pain, no fever, "
        "took some ibuprofen. I'm so scared"
    )
    assert lines[3] == (
        "4. Chief complaint extraction: abdominal pain; site: abdomen; severity: severe; "
        "denies fever"
    )
    assert lines[4:] == ["5. Medical reasoning:", *ANSWER.split("\n")]


def test_red_flags_are_named_in_step_four() -> None:
    lines = steps_of(five_step_target("My chest hurts since this morning, no fever", "Call 911."))
    assert lines[3].endswith("denies fever; red flags: Possible cardiac chest pain (urgent)")


def test_chinese_layout_keeps_negation() -> None:
    target = five_step_target("脑壳疼好几天了，没发烧，我好担心", "多休息，多喝水。")
    assert steps_of(target) == [
        "1. 情绪感知：消极（强度 0.68）；线索：“担心”",
        "2. 扰动识别：formal.dialect “脑壳疼” -> “头痛”；contextual.vague_expression “好几天”；"
        "emotional.negative “担心”",
        "3. 表达纠正：头痛好几天了，没发烧，我好担心",
        "4. 主诉提取：headache; site: head; duration: several days; denies fever",
        "5. 医学推理：",
        "多休息，多喝水。",
    ]


def test_language_argument_picks_headings() -> None:
    lines = steps_of(five_step_target("What is the usual dose?", "500 mg.", language="zh"))
    assert [line.split("：")[0] for line in lines[:5]] == [
        f"{n}. {title}" for n, title in enumerate(STEPS_ZH, 1)
    ]


@pytest.mark.parametrize(("message", "answer"), [(" ", "A"), ("Q?", "\n")])
def test_empty_inputs_are_refused(message: str, answer: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        five_step_target(message, answer)


# STEP_PATTERN: the contract with the GRPO format reward


def test_step_pattern_matches_both_templates() -> None:
    for message in ("My head hurts. No fever.", "脑壳疼好几天了，没发烧"):
        target = five_step_target(message, ANSWER)
        assert STEP_PATTERN.match(target)
        assert STEP_PATTERN.match("\n  " + target)


def well_formed(titles: tuple[str, ...] = STEPS) -> list[str]:
    return [f"{n}. {title}: text {n}" for n, title in enumerate(titles, 1)]


@pytest.mark.parametrize(
    "lines",
    [
        pytest.param(lambda s: [s[0], s[2], s[1], s[3], s[4]], id="out-of-order"),
        pytest.param(lambda s: [s[0], s[1], s[3], s[4]], id="step-missing"),
        pytest.param(lambda s: [*s[:4], "5. Medical reasoning:"], id="empty-reasoning"),
        pytest.param(lambda s: ["Sure!", *s], id="preamble"),
        pytest.param(lambda s: [s[0] + " " + s[1], *s[2:]], id="heading-mid-line"),
        pytest.param(lambda s: [s[0], "2. 扰动识别：x", *s[2:]], id="mixed-languages"),
        pytest.param(lambda s: ["1. Emotion perception:", *s[1:]], id="empty-step-one"),
    ],
)
def test_step_pattern_rejects_broken_layouts(lines: Any) -> None:
    assert STEP_PATTERN.match("\n".join(well_formed())) is not None
    assert STEP_PATTERN.search("\n".join(lines(well_formed()))) is None


# with_reasoning


def test_with_reasoning_rewrites_only_the_final_answer() -> None:
    record: dict[str, Any] = {
        "messages": [
            {"role": "system", "content": "Be careful."},
            {"role": "user", "content": "I have a cough."},
            {"role": "assistant", "content": "How long?"},
            {"role": "user", "content": "My head hurts. No fever."},
            {"role": "assistant", "content": ANSWER},
        ],
        "kind": "chat",
    }
    before = copy.deepcopy(record)
    out = with_reasoning(record)
    assert record == before
    assert out["kind"] == "chat"
    assert out["messages"][:4] == record["messages"][:4]
    assert out["messages"][4] == {
        "role": "assistant",
        "content": five_step_target("My head hurts. No fever.", ANSWER),
    }


@pytest.mark.parametrize(
    ("messages", "problem"),
    [
        ([{"role": "user", "content": "Q"}], "must end with the assistant's answer"),
        ([{"role": "system", "content": "S"}, {"role": "assistant", "content": "A"}], "user"),
    ],
)
def test_with_reasoning_needs_a_chat_record(messages: list[dict[str, str]], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        with_reasoning({"messages": messages})
