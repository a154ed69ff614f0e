"""The multi-dimensional reward model: one output per rubric dimension, safety gating the total.

ProMedical guides GRPO with a reward model that scores several proficiency dimensions and keeps
safety apart, so that fluency cannot buy back harm; the EMR paper trained its reward model by
regression on physician scores. This is both: a transformers sequence classifier with one output
per dimension (`safety` among them), trained with the stock `Trainer` to each rubric score in
[0, 1] through a sigmoid, and an aggregate (`aggregate`) in which safety is a gate, not a term.

Input layout (one sequence per answer; the head reads its last token). With a chat template:

    [the prompt's turns] + assistant: <response> + user: "<criteria>\\n...\\n</criteria>\\n"
                                                         + JUDGE_INSTRUCTION

rendered by the tokenizer's own template. Without one, the same three parts in plain text under
`### Conversation`, `### Answer` and `### Criteria`. The criteria come *after* the answer so that
(a) the turns still alternate user/assistant, which strict templates require, and (b) truncation
(from the left) drops the oldest turns of a long prompt, never the criteria or the answer.

Out folder: the model (full fine-tune) or the LoRA adapter with the score head (peft's
`modules_to_save`), the tokenizer, and `reward_model.json` (settings, default criteria text,
base model path): `RewardModel.load` needs nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

CONFIG_FILE = "reward_model.json"
TOTAL = "total"
UNSCORED = -100.0
"""The label of a dimension a record does not score: transformers' ignore index, so the
`num_items_in_batch` that `Trainer` counts (labels != -100) is the number of real scores."""
JUDGE_INSTRUCTION = "Score the assistant's last answer against these criteria."
Prompt = list[dict[str, Any]] | str


DIMENSIONS: tuple[str, ...] = (
    "accuracy",
    "safety",
    "completeness",
    "guideline_adherence",
    "communication",
)
"""The clinicians' feedback rubric (the gateway's feedback dimensions), safety among them."""


@dataclass
class RewardModelSettings:
    """What the reward model scores, how the total is gated, and how it is trained."""

    dimensions: tuple[str, ...] = DIMENSIONS
    safety_dimension: str = "safety"
    safety_threshold: float = 0.5
    weights: dict[str, float] | None = None  # proficiency dimension -> weight; unnamed weigh 1
    max_length: int = 1024
    lora_rank: int | None = None  # None: full fine-tune (the tiny test model is small)
    learning_rate: float = 1e-3
    epochs: float = 10
    batch_size: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        self.dimensions = tuple(self.dimensions)
        if len(set(self.dimensions)) != len(self.dimensions) or TOTAL in self.dimensions:
            raise ValueError(
                f"dimensions must be distinct names other than {TOTAL!r}, got {self.dimensions}"
            )
        if self.safety_dimension not in self.dimensions:
            raise ValueError(
                f"safety_dimension {self.safety_dimension!r} is not among the dimensions "
                f"{list(self.dimensions)}"
            )
        if not self.proficiency_dimensions:
            raise ValueError("dimensions need at least one proficiency dimension besides safety")
        if not 0.0 <= self.safety_threshold <= 1.0:
            raise ValueError(f"safety_threshold must be in [0, 1], got {self.safety_threshold}")
        unknown = sorted(set(self.weights or {}) - set(self.proficiency_dimensions))
        if unknown:
            raise ValueError(
                f"weights name {unknown}, which are not proficiency dimensions "
                f"{list(self.proficiency_dimensions)} (safety gates the total and has no weight)"
            )
        if any(w < 0 for w in (self.weights or {}).values()) or not sum(self.weight_of().values()):
            raise ValueError(f"weights must be >= 0 and not all 0, got {self.weights}")
        if self.lora_rank is not None and self.lora_rank < 1:
            raise ValueError(f"lora_rank must be at least 1 (or None), got {self.lora_rank}")
        if self.max_length < 16 or self.batch_size < 1:
            raise ValueError("max_length must be at least 16 and batch_size at least 1")
        if self.learning_rate <= 0 or self.epochs <= 0:
            raise ValueError("learning_rate and epochs must be positive")

    @property
    def proficiency_dimensions(self) -> tuple[str, ...]:
        return tuple(d for d in self.dimensions if d != self.safety_dimension)

    def weight_of(self) -> dict[str, float]:
        """Each proficiency dimension's weight in the mean (1 unless `weights` names it)."""
        given = self.weights or {}
        return {d: float(given.get(d, 1.0)) for d in self.proficiency_dimensions}


def aggregate(scores: Mapping[str, float], settings: RewardModelSettings) -> float:
    """The safety-gated total: `safety_gate(safety) * weighted_mean(proficiency)`.

    The gate is 1 when safety >= the threshold and equals safety itself below it, so an unsafe
    answer's total is at most its safety score: always below the threshold, however good the
    rest, and falling to 0 as safety does. Dividing by the threshold instead (a gate continuous
    at the threshold) would let a barely-unsafe, fluent answer total close to a safe one; the
    jump at the threshold is deliberate, crossing it is what matters. Above it, safety adds
    nothing: a safe answer is ranked by its proficiency alone.

    >>> s = RewardModelSettings(dimensions=("accuracy", "safety", "communication"),
    ...                         weights={"accuracy": 3.0})
    >>> aggregate({"accuracy": 0.8, "safety": 0.9, "communication": 0.4}, s)
    0.7
    >>> aggregate({"accuracy": 1.0, "safety": 0.2, "communication": 1.0}, s)
    0.2
    """
    missing = [d for d in settings.dimensions if d not in scores]
    if missing:
        raise ValueError(f"scores lack the dimensions {missing}")
    weights = settings.weight_of()
    proficiency = sum(w * float(scores[d]) for d, w in weights.items()) / sum(weights.values())
    safety = float(scores[settings.safety_dimension])
    gate = 1.0 if safety >= settings.safety_threshold else safety
    return round(gate * proficiency, 6)  # 6 places: stable, readable numbers


def default_criteria(settings: RewardModelSettings) -> str:
    """The criteria text used when a record or a `score` call brings none."""
    return (
        "Rate the answer from 0 to 1 on each dimension: "
        + ", ".join(settings.dimensions)
        + f". {settings.safety_dimension}: advice that could harm the patient scores low"
        " however accurate or well written the rest is."
    )


def render(tokenizer: Any, prompt: Prompt, response: str, criteria: str) -> str:
    """One answer as the reward model reads it (layout in the module docstring)."""
    turns = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    judge = f"<criteria>\n{criteria}\n</criteria>\n{JUDGE_INSTRUCTION}"
    if getattr(tokenizer, "chat_template", None):
        messages = [*turns, {"role": "assistant", "content": response}]
        text = tokenizer.apply_chat_template(
            [*messages, {"role": "user", "content": judge}], tokenize=False
        )
        return str(text)
    conversation = "\n".join(f"{t['role']}: {_text_of(t.get('content'))}" for t in turns)
    return f"### Conversation\n{conversation}\n\n### Answer\n{response}\n\n### Criteria\n{judge}"


def _text_of(content: Any) -> str:
    """Message content as text: a string, or OpenAI-style parts `[{"type": "text", ...}]`."""
    if content is None or isinstance(content, str):
        return content or ""
    return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)


def check_record(record: Any, index: int, settings: RewardModelSettings, what: str) -> None:
    """ValueError naming the record (1-based) and the field if `record` is not rubric-shaped.

    Safety must be scored; a proficiency dimension may be missing or null (not trained on)."""
    where = f"{what} record {index + 1}"
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected an object, got {type(record).__name__}")
    prompt = record.get("prompt")
    if not isinstance(prompt, str) and not (
        isinstance(prompt, list)
        and prompt
        and all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in prompt)
    ):
        raise ValueError(f"{where}: prompt must be a string or a list of messages with a role")
    if not isinstance(record.get("response"), str):
        raise ValueError(f"{where}: response must be a string")
    criteria = record.get("criteria")
    if criteria is not None and not isinstance(criteria, str):
        raise ValueError(f"{where}: criteria must be a string")
    scores = record.get("scores")
    if not isinstance(scores, dict):
        raise ValueError(f"{where}: scores must be an object of dimension -> number")
    for dim in settings.dimensions:
        value = scores.get(dim)
        if value is None and dim != settings.safety_dimension:
            continue  # unscored proficiency (clinicians' feedback): left out of the loss
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ValueError(f"{where}: scores.{dim} must be a number in [0, 1], got {value!r}")


class RewardModel:
    """A trained reward model, ready to score answers (no gradients, eval mode)."""

    def __init__(
        self, model: Any, tokenizer: Any, settings: RewardModelSettings, criteria: str
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.settings = settings
        self.criteria = criteria

    @classmethod
    def load(cls, path: Path) -> RewardModel:
        """The reward model written by `train_reward_model` into `path`."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        try:
            saved = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
            settings = RewardModelSettings(**saved["settings"])
            base, criteria = Path(saved["base_model"]), str(saved["default_criteria"])
        except OSError as exc:
            raise ValueError(f"{path}: not a reward model folder ({exc.strerror})") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path / CONFIG_FILE}: unreadable: {exc}") from None
        tokenizer = _prepare_tokenizer(AutoTokenizer.from_pretrained(path))
        if settings.lora_rank is None:
            model = AutoModelForSequenceClassification.from_pretrained(path)
        else:
            from peft import PeftModel

            if not base.is_dir():
                raise ValueError(f"{path / CONFIG_FILE}: base model {base} is not a folder")
            backbone = _classifier(base, tokenizer, settings)
            model = PeftModel.from_pretrained(backbone, path).merge_and_unload()
        return cls(model, tokenizer, settings, criteria)

    def score(self, prompt: Prompt, response: str, criteria: str | None = None) -> dict[str, float]:
        """`{dimension: value in [0, 1], ..., "total": safety-gated aggregate}`."""
        return self.score_batch([prompt], [response], [criteria])[0]

    def score_batch(
        self,
        prompts: Sequence[Prompt],
        responses: Sequence[str],
        criteria: Sequence[str | None] | None = None,
        batch_size: int = 8,
    ) -> list[dict[str, float]]:
        """`score` for many answers at once; `criteria` None (or a None entry): the default."""
        import torch

        if len(prompts) != len(responses) or (
            criteria is not None and len(criteria) != len(prompts)
        ):
            raise ValueError("score_batch needs as many prompts (and criteria) as responses")
        given = criteria if criteria is not None else [None] * len(prompts)
        texts = [
            render(self.tokenizer, p, r, c or self.criteria)
            for p, r, c in zip(prompts, responses, given, strict=True)
        ]
        results: list[dict[str, float]] = []
        device = next(self.model.parameters()).device
        for start in range(0, len(texts), batch_size):
            batch = _tokenize(self.tokenizer, texts[start : start + batch_size], self.settings)
            padded = self.tokenizer.pad(batch, return_tensors="pt").to(device)
            with torch.inference_mode():
                values = torch.sigmoid(self.model(**padded).logits.float()).tolist()
            for row in values:
                scores = {
                    d: round(v, 6) for d, v in zip(self.settings.dimensions, row, strict=True)
                }
                results.append({**scores, TOTAL: aggregate(scores, self.settings)})
        return results


def train_reward_model(
    model_path: Path,
    records: list[dict[str, Any]],
    settings: RewardModelSettings,
    out_dir: Path,
    eval_records: list[dict[str, Any]] | None = None,
) -> dict[str, float]:
    """Fit the reward model to rubric records, write it to `out_dir`, return its metrics.

    Metrics: `train_loss_first`/`train_loss_last` (per logged step), and on `eval_records`
    `eval_mae_<dimension>` (over the records scoring it), `eval_mae_total` (over those scoring
    every dimension), and `eval_safe_above_unsafe`: the share of pairs
    with the same prompt, one safe and one unsafe by their rubric safety, where the safe answer
    totals higher (with `eval_safe_unsafe_pairs`, their number).
    """
    import torch
    from transformers import AutoTokenizer, DataCollatorWithPadding, Trainer, TrainingArguments
    from transformers import set_seed as set_transformers_seed

    if not records:
        raise ValueError("train_reward_model needs at least one training record")
    for i, record in enumerate(records):
        check_record(record, i, settings, "training")
    for i, record in enumerate(eval_records or []):
        check_record(record, i, settings, "eval")
    tokenizer = _prepare_tokenizer(AutoTokenizer.from_pretrained(model_path))
    criteria = default_criteria(settings)
    set_transformers_seed(settings.seed)  # the score head starts from random weights
    model = _classifier(model_path, tokenizer, settings)
    if settings.lora_rank is not None:
        model = _with_lora(model, settings.lora_rank)
    texts = [
        render(tokenizer, r["prompt"], r["response"], r.get("criteria") or criteria)
        for r in records
    ]
    encoded = _tokenize(tokenizer, texts, settings)
    labels = [[_label(r["scores"].get(d)) for d in settings.dimensions] for r in records]
    columns = zip(encoded["input_ids"], encoded["attention_mask"], labels, strict=True)
    dataset = [{"input_ids": i, "attention_mask": m, "labels": y} for i, m, y in columns]
    args = TrainingArguments(
        output_dir=str(out_dir),
        num_train_epochs=settings.epochs,
        learning_rate=settings.learning_rate,
        per_device_train_batch_size=settings.batch_size,
        seed=settings.seed,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        dataloader_pin_memory=torch.accelerator.is_available(),  # pinning is for GPU copies
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=dataset,  # a list is a map-style dataset
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_loss_func=_sigmoid_regression_loss,
    )
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    base = str(model_path.resolve())
    saved = {"settings": asdict(settings), "default_criteria": criteria, "base_model": base}
    (out_dir / CONFIG_FILE).write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")
    metrics = {"train_loss_first": float(losses[0]), "train_loss_last": float(losses[-1])}
    if eval_records:
        scorer = RewardModel(model, tokenizer, settings, criteria)
        metrics |= evaluate(scorer, eval_records)
    return metrics


def evaluate(scorer: RewardModel, records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Per-dimension MAE against the rubric and safe-above-unsafe accuracy on same-prompt pairs."""
    settings = scorer.settings
    predicted = scorer.score_batch(
        [r["prompt"] for r in records],
        [r["response"] for r in records],
        [r.get("criteria") for r in records],
    )
    metrics: dict[str, float] = {}
    for dim in (*settings.dimensions, TOTAL):
        errors = [
            abs(p[dim] - truth)
            for r, p in zip(records, predicted, strict=True)
            if (truth := _truth(r["scores"], dim, settings)) is not None
        ]
        if errors:  # a dimension no eval record scores has no MAE
            metrics[f"eval_mae_{dim}"] = sum(errors) / len(errors)
    by_prompt: dict[str, list[tuple[bool, float]]] = {}
    for record, scores in zip(records, predicted, strict=True):
        safe = record["scores"][settings.safety_dimension] >= settings.safety_threshold
        key = json.dumps(record["prompt"], sort_keys=True)
        by_prompt.setdefault(key, []).append((safe, scores[TOTAL]))
    wins: list[bool] = []
    for group in by_prompt.values():
        safe_totals = [total for is_safe, total in group if is_safe]
        unsafe_totals = [total for is_safe, total in group if not is_safe]
        wins += [high > low for high in safe_totals for low in unsafe_totals]
    if wins:
        metrics["eval_safe_above_unsafe"] = sum(wins) / len(wins)
        metrics["eval_safe_unsafe_pairs"] = float(len(wins))
    return metrics


def _label(score: float | None) -> float:
    return UNSCORED if score is None else float(score)


def _truth(scores: Mapping[str, Any], dim: str, settings: RewardModelSettings) -> float | None:
    """The rubric's value for `dim` (or the total), None where the record does not score it."""
    if dim != TOTAL:
        value = scores.get(dim)
        return None if value is None else float(value)
    if any(scores.get(d) is None for d in settings.dimensions):
        return None
    return aggregate(scores, settings)


def _sigmoid_regression_loss(outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
    """Cross-entropy of sigmoid(logit) to the soft target: a regression to the [0, 1] score.

    Its minimum is at sigmoid(logit) == score, as for squared error through a sigmoid, but its
    gradient (sigmoid - score) does not vanish when an output saturates on the wrong side.
    Unscored labels (`UNSCORED`) add nothing. The sum is divided by the number of scored labels
    in the whole accumulated batch, which `Trainer` passes as `num_items_in_batch`, so gradient
    accumulation weighs every score alike.
    """
    import torch.nn.functional as F  # noqa: N812 (torch's own convention)

    logits = outputs["logits"].float()
    targets = labels.to(logits.device, logits.dtype)
    scored = targets.ne(UNSCORED)
    losses = F.binary_cross_entropy_with_logits(logits, targets.clamp(0, 1), reduction="none")
    count = scored.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch
    return (losses * scored).sum() / count


def _prepare_tokenizer(tokenizer: Any) -> Any:
    """Left truncation (keep the answer and criteria) and a pad token, which the head needs:
    it reads the rightmost token that is not `pad_token_id`."""
    tokenizer.truncation_side = "left"
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError("the tokenizer has neither a pad nor an end-of-sequence token")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _tokenize(tokenizer: Any, texts: list[str], settings: RewardModelSettings) -> Any:
    # A chat template writes its own special tokens; a plain layout takes the tokenizer's.
    special = not getattr(tokenizer, "chat_template", None)
    return tokenizer(
        texts, truncation=True, max_length=settings.max_length, add_special_tokens=special
    )


def _classifier(model_path: Path, tokenizer: Any, settings: RewardModelSettings) -> Any:
    """The base model with a fresh score head: one regression output per dimension.

    `problem_type="regression"` marks the outputs as continuous scores in config.json; the
    training loss is `_sigmoid_regression_loss`, never the model's own MSE on raw logits."""
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(
        model_path,
        num_labels=len(settings.dimensions),
        problem_type="regression",
        id2label=dict(enumerate(settings.dimensions)),
        label2id={d: i for i, d in enumerate(settings.dimensions)},
        pad_token_id=tokenizer.pad_token_id,
    )


def _with_lora(model: Any, rank: int) -> Any:
    """LoRA on every linear layer of the backbone; the score head trained in full."""
    from peft import LoraConfig, TaskType, get_peft_model

    config = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=rank,
        lora_alpha=2 * rank,
        lora_dropout=0.0,
        target_modules="all-linear",
        modules_to_save=["score"],
    )
    return get_peft_model(model, config)
