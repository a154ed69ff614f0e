"""training.reward_model: the safety-gated aggregate, settings checks, and real training runs.

The rubric is separable on purpose: an answer telling the patient to stop insulin is unsafe
(safety 0.05), one telling them to keep taking it is safe (0.9); proficiency follows a visible
feature, the detailed follow-up plan (0.9 with it, 0.3 without). The tiny Qwen2 (random weights,
real tokenizer) is fine-tuned on it in a few seconds; held-out prompts check what it learnt.
"""

from __future__ import annotations

import doctest
import json
from pathlib import Path
from typing import Any

import pytest

import training.reward_model as reward_model_module
from training.reward_model import (
    CONFIG_FILE,
    RewardModel,
    RewardModelSettings,
    aggregate,
    default_criteria,
    evaluate,
    render,
    train_reward_model,
)
from weights.tiny import build_tiny_model

DIMENSIONS = ("accuracy", "safety", "completeness", "guideline_adherence", "communication")
SAFE = "Keep taking your insulin as prescribed."
UNSAFE = "Stop your insulin until you feel better."
PLAN = (
    " Check your blood glucose four times a day, follow the ADA guideline on sick days,"
    " drink water and call your doctor if readings stay above 300 mg/dL."
)
TRAIN_PROMPTS = [
    "My sugar is high today, what should I do with my insulin?",
    "I have the flu and I'm not eating much. Should I keep injecting insulin?",
    "Is it ok to skip insulin when I feel sick?",
    "My glucose meter shows 250, what do I do?",
    "I vomited this morning, what about my insulin dose?",
    "I have type 1 diabetes and a fever. Advice on insulin?",
]
HELD_OUT_PROMPTS = [
    "My child has type 1 diabetes and a stomach bug. What about insulin?",
    "I feel weak and my sugar is 280. Should I change my insulin?",
]


def rubric(prompt: str) -> list[dict[str, Any]]:
    """Four answers to one prompt: safe/unsafe crossed with detailed/brief."""
    records = []
    for opening, safety in ((SAFE, 0.9), (UNSAFE, 0.05)):
        for detail, proficiency in ((PLAN, 0.9), ("", 0.3)):
            scores = dict.fromkeys(DIMENSIONS, proficiency) | {"safety": safety}
            records.append(
                {
                    "prompt": [{"role": "user", "content": prompt}],
                    "response": opening + detail,
                    "scores": scores,
                    "criteria": "Insulin must never be stopped in type 1 diabetes.",
                }
            )
    return records


def proficiency_of(scores: dict[str, float]) -> list[float]:
    return [scores[d] for d in DIMENSIONS if d != "safety"]


TRAIN = [r for p in TRAIN_PROMPTS for r in rubric(p)]
EVAL = [r for p in HELD_OUT_PROMPTS for r in rubric(p)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)


@pytest.fixture(scope="module")
def trained(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    out = tmp_path_factory.mktemp("reward") / "full"
    metrics = train_reward_model(tiny, TRAIN, RewardModelSettings(epochs=20), out, EVAL)
    return out, metrics


@pytest.fixture(scope="module")
def loaded(trained: tuple[Path, dict[str, float]]) -> RewardModel:
    return RewardModel.load(trained[0])


# --- the aggregate rule, a pure function ---------------------------------------------------


def test_doctests_pass() -> None:
    assert doctest.testmod(reward_model_module).failed == 0


def test_safe_answer_totals_its_weighted_proficiency() -> None:
    settings = RewardModelSettings(weights={"accuracy": 2.0, "communication": 0.0})
    scores = {
        "accuracy": 0.9,
        "safety": 0.6,
        "completeness": 0.3,
        "guideline_adherence": 0.6,
        "communication": 0.0,
    }
    assert aggregate(scores, settings) == pytest.approx((2 * 0.9 + 0.3 + 0.6) / 4)


def test_unsafe_answer_is_capped_at_its_safety_however_proficient() -> None:
    settings = RewardModelSettings(safety_threshold=0.5)
    perfect = dict.fromkeys(DIMENSIONS, 1.0)
    assert aggregate(perfect | {"safety": 0.49}, settings) == pytest.approx(0.49)
    assert aggregate(perfect | {"safety": 0.1}, settings) == pytest.approx(0.1)
    assert aggregate(perfect | {"safety": 0.0}, settings) == 0.0
    half = dict.fromkeys(DIMENSIONS, 0.5)
    assert aggregate(half | {"safety": 0.2}, settings) == pytest.approx(0.1)  # gate times mean


def test_threshold_itself_counts_as_safe_and_safety_adds_nothing_above_it() -> None:
    settings = RewardModelSettings(safety_threshold=0.7)
    scores = dict.fromkeys(DIMENSIONS, 0.8)
    assert aggregate(scores | {"safety": 0.7}, settings) == pytest.approx(0.8)
    assert aggregate(scores | {"safety": 1.0}, settings) == pytest.approx(0.8)
    assert aggregate(scores | {"safety": 0.69}, settings) == pytest.approx(0.69 * 0.8)


def test_custom_safety_dimension_and_missing_scores() -> None:
    settings = RewardModelSettings(dimensions=("harm", "accuracy"), safety_dimension="harm")
    assert aggregate({"harm": 0.3, "accuracy": 1.0}, settings) == pytest.approx(0.3)
    with pytest.raises(ValueError, match=r"lack the dimensions \['harm'\]"):
        aggregate({"accuracy": 1.0}, settings)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"safety_dimension": "harm"}, "safety_dimension 'harm' is not among the dimensions"),
        ({"safety_threshold": 1.5}, r"safety_threshold must be in \[0, 1\], got 1.5"),
        ({"safety_threshold": -0.1}, r"safety_threshold must be in \[0, 1\]"),
        ({"weights": {"acuracy": 2.0}}, r"weights name \['acuracy'\], which are not proficiency"),
        ({"weights": {"safety": 2.0}}, "safety gates the total and has no weight"),
        ({"weights": {"accuracy": -1.0}}, "weights must be >= 0"),
        ({"dimensions": ("safety",)}, "at least one proficiency dimension"),
        ({"dimensions": ("safety", "total")}, "distinct names other than 'total'"),
        ({"dimensions": ("safety", "a", "a")}, "distinct names"),
        ({"lora_rank": 0}, "lora_rank must be at least 1"),
        ({"epochs": 0}, "learning_rate and epochs must be positive"),
    ],
)
def test_invalid_settings_are_refused_clearly(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RewardModelSettings(**kwargs)


# --- input layout and record checks --------------------------------------------------------


def test_layout_puts_delimited_criteria_after_the_answer(tiny: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny)
    prompt = [{"role": "user", "content": "Fever?"}]
    text = render(tokenizer, prompt, "Rest and fluids.", "Be safe.")
    assert text.endswith(
        "<|im_start|>user\nFever?<|im_end|>\n"
        "<|im_start|>assistant\nRest and fluids.<|im_end|>\n"
        "<|im_start|>user\n<criteria>\nBe safe.\n</criteria>\n"
        "Score the assistant's last answer against these criteria.<|im_end|>\n"
    )
    tokenizer.chat_template = None
    plain = render(tokenizer, "Fever?", "Rest and fluids.", "Be safe.")
    assert plain == (
        "### Conversation\nuser: Fever?\n\n### Answer\nRest and fluids.\n\n### Criteria\n"
        "<criteria>\nBe safe.\n</criteria>\nScore the assistant's last answer against these "
        "criteria."
    )


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({**TRAIN[0], "scores": {**TRAIN[0]["scores"], "safety": 1.5}}, r"scores.safety .* 1.5"),
        ({**TRAIN[0], "scores": {"accuracy": 0.5}}, r"scores.safety must be a number"),
        ({k: v for k, v in TRAIN[0].items() if k != "response"}, "response must be a string"),
        ({**TRAIN[0], "prompt": [{"content": "hi"}]}, "prompt must be a string or a list"),
        ({**TRAIN[0], "criteria": 3}, "criteria must be a string"),
    ],
)
def test_bad_records_name_the_record_and_field(
    tiny: Path, tmp_path: Path, record: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=f"training record 2: {message}"):
        train_reward_model(tiny, [TRAIN[0], record], RewardModelSettings(), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_loss_regresses_through_a_sigmoid_and_skips_unscored_labels() -> None:
    import torch

    from training.reward_model import UNSCORED, _sigmoid_regression_loss

    logits = torch.tensor([[0.0, 2.0], [-1.0, 3.0]])
    labels = torch.tensor([[0.5, 0.9], [UNSCORED, 0.2]])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor([0.0, 2.0, 3.0]), torch.tensor([0.5, 0.9, 0.2])
    )
    loss = _sigmoid_regression_loss({"logits": logits}, labels)
    assert loss.item() == pytest.approx(expected.item())
    # what Trainer passes: the scored labels of the whole accumulated batch (here twice as many)
    halved = _sigmoid_regression_loss({"logits": logits}, labels, torch.tensor(6))
    assert halved.item() == pytest.approx(expected.item() / 2)
    score = torch.tensor([[0.3]])
    losses = [
        _sigmoid_regression_loss({"logits": torch.logit(torch.tensor([[p]]))}, score).item()
        for p in (0.1, 0.3, 0.6)
    ]
    assert losses[1] < min(losses[0], losses[2])  # least where sigmoid(logit) is the score


def test_partially_scored_records_train_and_evaluate(tiny: Path, tmp_path: Path) -> None:
    """Clinician feedback scores safety but may leave proficiency dimensions out or null."""
    partial = [
        {**r, "scores": {"safety": r["scores"]["safety"], "accuracy": None, "communication": 0.5}}
        for r in TRAIN[:4]
    ]
    settings = RewardModelSettings(epochs=1)
    metrics = train_reward_model(tiny, partial, settings, tmp_path / "out", partial)
    assert "eval_mae_safety" in metrics and "eval_mae_communication" in metrics
    assert "eval_mae_accuracy" not in metrics  # nothing to compare against
    assert "eval_mae_total" not in metrics  # no record scores every dimension
    assert metrics["eval_safe_unsafe_pairs"] == 4


def test_load_refuses_a_folder_that_is_not_a_reward_model(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a reward model folder"):
        RewardModel.load(tmp_path)
    (tmp_path / CONFIG_FILE).write_text('{"settings": {}}')
    with pytest.raises(ValueError, match=f"{CONFIG_FILE}: unreadable"):
        RewardModel.load(tmp_path)


# --- a real training run on the tiny model -------------------------------------------------


def test_training_loss_falls(trained: tuple[Path, dict[str, float]]) -> None:
    _, metrics = trained
    assert metrics["train_loss_last"] < 0.8 * metrics["train_loss_first"]


def test_held_out_safe_answers_total_above_unsafe_ones(
    trained: tuple[Path, dict[str, float]],
) -> None:
    _, metrics = trained
    assert metrics["eval_safe_unsafe_pairs"] == 8  # 2 prompts x 2 safe x 2 unsafe answers
    assert metrics["eval_safe_above_unsafe"] == 1.0
    assert metrics["eval_mae_safety"] < 0.2


def test_unsafe_answer_stays_below_threshold_even_when_proficient(loaded: RewardModel) -> None:
    scores = loaded.score(HELD_OUT_PROMPTS[0], UNSAFE + PLAN)
    assert set(scores) == {*DIMENSIONS, "total"}
    assert min(proficiency_of(scores)) > 0.5  # it learnt the detailed plan is proficient...
    assert scores["safety"] < 0.5  # ...and that stopping insulin is not safe
    assert scores["total"] <= scores["safety"] < 0.5
    safe = loaded.score(HELD_OUT_PROMPTS[0], SAFE + PLAN)
    assert safe["safety"] >= 0.5
    assert safe["total"] == pytest.approx(sum(proficiency_of(safe)) / 4, abs=1e-5)


def test_save_load_round_trip_gives_identical_scores(
    trained: tuple[Path, dict[str, float]], loaded: RewardModel
) -> None:
    out, metrics = trained
    in_memory = {k: v for k, v in metrics.items() if k.startswith("eval_")}
    assert evaluate(loaded, EVAL) == in_memory  # computed by the model before it was saved
    again = RewardModel.load(out)
    prompts = [r["prompt"] for r in EVAL]
    responses = [r["response"] for r in EVAL]
    assert again.score_batch(prompts, responses) == loaded.score_batch(prompts, responses)


def test_out_dir_is_self_describing(trained: tuple[Path, dict[str, float]], tiny: Path) -> None:
    out, _ = trained
    saved = json.loads((out / CONFIG_FILE).read_text())
    assert saved["settings"]["dimensions"] == list(DIMENSIONS)
    assert saved["settings"]["safety_threshold"] == 0.5
    assert saved["default_criteria"] == default_criteria(RewardModelSettings())
    assert saved["base_model"] == str(tiny.resolve())
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["Qwen2ForSequenceClassification"]
    assert config["problem_type"] == "regression"
    assert [config["id2label"][str(i)] for i in range(5)] == list(DIMENSIONS)
    assert (out / "tokenizer.json").is_file()


def test_padding_does_not_change_a_score(loaded: RewardModel) -> None:
    """The head reads the last non-pad token: pad_token_id must be set, and is."""
    short, long = (HELD_OUT_PROMPTS[1], SAFE), (HELD_OUT_PROMPTS[1], SAFE + PLAN)
    together = loaded.score_batch([short[0], long[0]], [short[1], long[1]])
    alone = [loaded.score(*short), loaded.score(*long)]
    for batched, single in zip(together, alone, strict=True):
        assert batched == pytest.approx(single, abs=1e-5)
    assert together[0] != pytest.approx(together[1], abs=1e-3)


def test_criteria_text_is_read(loaded: RewardModel) -> None:
    prompt, response = HELD_OUT_PROMPTS[0], SAFE
    assert loaded.score(prompt, response, "Insulin must never be stopped.") != loaded.score(
        prompt, response, "Completely different criteria about something else entirely."
    )


def test_lora_run_saves_adapter_and_head_and_reloads(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "lora"
    settings = RewardModelSettings(lora_rank=4, epochs=4, learning_rate=5e-3)
    metrics = train_reward_model(tiny, TRAIN, settings, out, EVAL)
    assert metrics["train_loss_last"] < metrics["train_loss_first"]
    assert (out / "adapter_config.json").is_file()
    assert not (out / "model.safetensors").exists()  # the base stays where it is
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["task_type"] == "SEQ_CLS"
    assert "score" in adapter["modules_to_save"]
    loaded = RewardModel.load(out)
    reloaded = evaluate(loaded, EVAL)
    for key, value in reloaded.items():  # merged on load: equal up to float rounding
        assert value == pytest.approx(metrics[key], abs=1e-4), key
