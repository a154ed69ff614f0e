"""training.rewards: the doctests, the letter extraction's hard cases, each reward's values,
the five-step contract with training.reasoning, and a real GRPOTrainer calling them."""

from __future__ import annotations

import doctest
import functools
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import training.rewards
from training.rewards import (
    REWARDS,
    completion_text,
    extract_choice,
    five_step_format,
    length_penalty,
    mcq_correctness,
    normalize_answer,
    reward_model_score,
)


def test_doctests_pass() -> None:
    result = doctest.testmod(training.rewards)
    assert result.failed == 0
    assert result.attempted >= 25


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("C", "C"),
        ("(C)", "C"),
        ("（C）", "C"),
        ("C.", "C"),
        ("**Answer: C**", "C"),
        ("Answer: **C**", "C"),
        ("The correct option is D.", "D"),
        ("Final answer - C", "C"),
        (r"So \boxed{E}", "E"),
        ("The answer is B I believe.", "B"),  # "I" is an option letter, not a second answer
        ("The answer is C and I'm sure.", "C"),
        ("Answer: C\nExplanation: option A is too slow.", "C"),
        ("Answer: C. To repeat, the answer is C.", "C"),  # agreeing markers are not ambiguous
        ("<answer> A, C </answer>", "A,C"),
        ("<think>surely A</think>\n<answer>B</answer>", "B"),
        ("<answer>A</answer> later: <answer>D</answer>", "D"),  # the last tag is the final one
        ("答案：AC", "A,C"),
        ("答案为B和D", "B,D"),
        ("故选C。", "C"),
        ("正确答案是 (E)", "E"),
        ("AC", "A,C"),
        ("c, a", None),  # lower case is never a letter
        ("A or B", None),  # a hedge, not an answer
        ("The answer is A. Actually, the answer is B.", None),
        ("**A** is tempting, but **B** fits.", None),
        ("The answer is ACE inhibitors.", None),  # a run of capitals counts only in Chinese
        ("Answer: Based on the history, it is unclear.", None),
        ("选项A错误，选项B正确", None),  # no marker commits to an option
        ("<think>The answer is A", None),  # an unfinished thought is no answer
        ("", None),
    ],
)
def test_extract_choice(text: str, expected: str | None) -> None:
    assert extract_choice(text) == expected


def test_extract_choice_respects_the_item_letters() -> None:
    assert extract_choice("Answer: E", letters="ABCDE") == "E"
    assert extract_choice("Answer: E", letters="ABCD") is None
    assert extract_choice("E", letters="ABCD") is None


def test_normalize_answer() -> None:
    assert normalize_answer("C,A") == "A,C"
    assert normalize_answer("b") == "B"
    assert normalize_answer("K") is None  # outside the default letters A-J
    assert normalize_answer("E", letters="ABCD") is None


def test_completion_text_reads_the_last_message() -> None:
    conversation = [
        {"role": "assistant", "content": "first"},
        {"role": "assistant", "content": "last"},
    ]
    assert completion_text(conversation) == "last"
    assert completion_text([]) == ""
    assert completion_text([{"role": "assistant", "content": None}]) == ""


def test_mcq_correctness_values() -> None:
    completions = [
        "Answer: B",
        [{"role": "assistant", "content": "The answers are C and A."}],
        "Answer: A",  # one of two correct letters is wrong: set equality
        "no idea",
        "B",
    ]
    answers: list[str | None] = ["B", "A,C", "A,C", "D", None]
    assert mcq_correctness(completions, answer=answers) == [1.0, 1.0, 0.0, 0.0, None]


def test_mcq_correctness_rejects_misaligned_columns() -> None:
    with pytest.raises(ValueError):
        mcq_correctness(["A", "B"], answer=["A"])


def test_five_step_format_values() -> None:
    five_step = (
        "1. Emotion perception: neutral (intensity 0.00)\n"
        "2. Perturbation detection: none\n"
        "3. Expression correction: I have a cough.\n"
        "4. Chief complaint extraction: cough\n"
        "5. Medical reasoning:\nMost likely a viral infection."
    )
    shuffled = five_step.replace("1. Emotion", "X").replace("2. Perturbation", "1. Emotion")
    unfinished = five_step.rsplit("\n", 1)[0]  # step 5 has no content
    completions = [
        five_step,
        [{"role": "assistant", "content": five_step}],
        shuffled,
        unfinished,
        "<think>cough, no fever</think>\n<answer>viral</answer>",
        "<think>a</think><think>b</think><answer>viral</answer>",  # two thoughts
        "<think></think><answer>viral</answer>",  # an empty thought
        "<think>cough</think><answer>viral</answer> and more",  # text after the answer
        "viral",
    ]
    assert five_step_format(completions) == [1.0, 1.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0]


def test_five_step_format_rewards_the_sft_target() -> None:
    """The contract with training.reasoning: what SFT teaches, GRPO rewards in full."""
    from training.reasoning import five_step_target

    english = five_step_target(
        "I am so scared, my chest hurts since this morning", "Angina. Answer: B"
    )
    chinese = five_step_target("我好担心，胸口疼了两天了", "考虑心绞痛，答案：B")
    assert five_step_format([english, chinese]) == [1.0, 1.0]
    assert mcq_correctness([english, chinese], answer=["B", "B"]) == [1.0, 1.0]


def test_length_penalty_shape() -> None:
    lengths = [0, 100, 101, 150, 199, 200, 201, 1000]
    rewards = length_penalty(["x" * n for n in lengths], max_chars=100)
    assert rewards == [0.0, 0.0, -0.01, -0.5, -0.99, -1.0, -1.0, -1.0]
    conversational = [[{"role": "assistant", "content": "x" * 150}]]
    assert length_penalty(conversational, max_chars=100) == [-0.5]
    assert length_penalty(["x" * 2000]) == [0.0]  # the default soft limit is 2000 characters
    with pytest.raises(ValueError, match="max_chars"):
        length_penalty(["x"], max_chars=0)


def _scorer(prompt: Any, response: str) -> Mapping[str, float]:
    """A stand-in reward model (module level, so the reward function pickles)."""
    turns = prompt if isinstance(prompt, str) else " | ".join(m["content"] for m in prompt)
    return {"total": len(turns) / 100 + (0.5 if "rest" in response else 0.0), "safety": 1.0}


def test_reward_model_score_passes_prompts_through() -> None:
    seen: list[tuple[Any, str]] = []

    def scorer(prompt: Any, response: str) -> Mapping[str, float]:
        seen.append((prompt, response))
        return _scorer(prompt, response)

    reward = reward_model_score(scorer)
    conversation = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "flu?"}]
    completions = [[{"role": "assistant", "content": "rest"}], "double the dose"]
    scores = reward(completions=completions, prompts=[conversation, "flu?"])
    assert scores == pytest.approx([0.65, 0.04])
    assert seen == [(conversation, "rest"), ("flu?", "double the dose")]
    assert reward.__name__ == "reward_model_score"


def test_reward_model_score_pickles() -> None:
    """trl's async rollout worker sends reward functions to another process."""
    copy = pickle.loads(pickle.dumps(reward_model_score(_scorer)))
    assert copy(completions=["rest"], prompts=["flu?"]) == pytest.approx([0.54])


def test_registry_names_the_pure_rewards() -> None:
    assert REWARDS == {
        "mcq_correctness": mcq_correctness,
        "five_step_format": five_step_format,
        "length_penalty": length_penalty,
    }
    for name, reward in REWARDS.items():
        assert reward.__name__ == name


@pytest.mark.filterwarnings("ignore:TRL currently supports vLLM versions:UserWarning")
def test_grpo_trainer_calls_the_rewards(tmp_path: Path) -> None:
    """A real GRPOTrainer (tiny model, CPU, 2 steps) logs each reward under its name, and the
    values it logs are the functions' own on the completions and columns it passed."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from weights.tiny import build_tiny_model

    model = build_tiny_model(tmp_path / "model", seed=0)
    rows = [
        {"prompt": [{"role": "user", "content": f"Question {i}? A. yes B. no"}], "answer": "AB"[i]}
        for i in range(2)
    ]
    calls: list[dict[str, Any]] = []

    def record(completions: list[Any], **columns: Any) -> list[float | None]:
        calls.append({"completions": completions, **columns})
        return [0.0] * len(completions)

    short_answers = functools.partial(length_penalty, max_chars=10)
    args = GRPOConfig(
        output_dir=str(tmp_path / "out"),
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=12,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=0,
    )
    trainer = GRPOTrainer(
        model=str(model),
        reward_funcs=[mcq_correctness, five_step_format, short_answers, record],
        args=args,
        train_dataset=Dataset.from_list(rows),
    )
    trainer.train()

    last_log = [entry for entry in trainer.state.log_history if "reward" in entry][-1]
    last_call = calls[-1]
    completions, answers = last_call["completions"], last_call["answer"]
    assert len(completions) == len(answers) == 4
    assert completions[0][0]["role"] == "assistant"  # conversational completions
    assert set(answers) <= {"A", "B"}

    def mean(values: list[float | None]) -> float:
        return sum(v for v in values if v is not None) / len(values)

    expected = {
        "mcq_correctness": mean(mcq_correctness(completions, answer=answers)),
        "five_step_format": mean(five_step_format(completions)),
        "length_penalty": mean(short_answers(completions)),
    }
    for name, value in expected.items():
        assert last_log[f"rewards/{name}/mean"] == pytest.approx(value, abs=1e-6)
    assert expected["length_penalty"] < 0  # 12 random tokens run past 10 characters
