"""The settings of every training stage, as dataclasses a YAML recipe fills in.

One recipe file, one run: `stage` picks the dataclass below, `training.recipe.build` checks
every key and type, and the stage's trainer reads nothing else. Groups are shared across
stages (`model`, `lora`, `train`, `data`) so that a CPT recipe and an SFT recipe read alike,
and each trainer maps them onto the TRL/transformers config it drives. Defaults are the usual
LoRA fine-tuning values for a 0.5B-8B model on one GPU; the smoke recipes shrink them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from training.augment import AugmentSettings
from training.recipe import RecipeError, build, expand_env
from training.reward_model import DIMENSIONS

Stage = Literal["sft", "cpt", "reward", "grpo", "simpo", "sample"]
STAGES: tuple[Stage, ...] = ("sft", "cpt", "reward", "grpo", "simpo", "sample")
DataFormat = Literal["chat", "text", "preference", "rubric", "mcq", "feedback"]
LINEAR_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class ModelSettings:
    """The base model: a local folder (nothing is fetched from a hub)."""

    path: Path
    served_name: str | None = None  # the name the workers serve it under; default: folder name
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"  # auto: bf16 on GPU, fp32 on CPU


@dataclass
class LoraSettings:
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: list(LINEAR_MODULES))

    def __post_init__(self) -> None:
        if self.rank < 1 or self.alpha < 1:
            raise ValueError("lora.rank and lora.alpha must be at least 1")
        if not 0 <= self.dropout < 1:
            raise ValueError("lora.dropout must be in [0, 1)")
        if not self.target_modules:
            raise ValueError("lora.target_modules must name at least one module")


@dataclass
class DataSource:
    path: Path
    format: DataFormat
    limit: int | None = None


@dataclass
class TrainSettings:
    """What every trainer shares; mapped onto transformers' TrainingArguments."""

    output_dir: Path
    max_steps: int = -1  # -1: run `epochs` epochs
    epochs: float = 1.0
    learning_rate: float = 2e-4
    batch_size: int = 4
    gradient_accumulation_steps: int = 1
    max_length: int = 1024
    warmup_ratio: float = 0.03
    logging_steps: int = 10
    save_steps: int = 500
    seed: int = 0
    gradient_checkpointing: bool = False
    deepspeed: str | None = None  # "zero2", "zero3" (the packaged configs) or a JSON path

    def __post_init__(self) -> None:
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError("train.max_steps must be positive, or -1 to run by epochs")
        if self.batch_size < 1 or self.gradient_accumulation_steps < 1:
            raise ValueError("train.batch_size and gradient_accumulation_steps must be >= 1")
        if self.learning_rate <= 0:
            raise ValueError("train.learning_rate must be positive")


@dataclass
class SFTRecipe:
    """Supervised fine-tuning on chats; the loss covers the assistant's turns only."""

    stage: Literal["sft"]
    model: ModelSettings
    train: TrainSettings
    data: list[DataSource]
    lora: LoraSettings = field(default_factory=LoraSettings)
    augment: AugmentSettings = field(default_factory=AugmentSettings)
    five_step_reasoning: bool = False  # targets rewritten as PrMed's five-step chain
    completion_only_loss: bool = True


@dataclass
class CPTRecipe:
    """Continued pre-training on raw domain text, packed into full-length sequences."""

    stage: Literal["cpt"]
    model: ModelSettings
    train: TrainSettings
    data: list[DataSource]
    lora: LoraSettings = field(default_factory=LoraSettings)
    packing: bool = True


@dataclass
class RewardRecipe:
    """The multi-dimensional reward model, by regression on rubric scores."""

    stage: Literal["reward"]
    model: ModelSettings
    train: TrainSettings
    data: list[DataSource]
    eval_data: list[DataSource] = field(default_factory=list)
    dimensions: list[str] = field(default_factory=lambda: list(DIMENSIONS))
    safety_dimension: str = "safety"
    safety_threshold: float = 0.5
    weights: dict[str, float] | None = None
    lora_rank: int | None = None  # None: fine-tune every weight (small reward models)


@dataclass
class RewardTerm:
    name: str  # a pure reward in `training.rewards.REWARDS`, or "reward_model"
    weight: float = 1.0


@dataclass
class GRPORecipe:
    """GRPO on prompts with verifiable answers, guided by pure rewards and the reward model."""

    stage: Literal["grpo"]
    model: ModelSettings
    train: TrainSettings
    data: list[DataSource]
    rewards: list[RewardTerm]
    lora: LoraSettings = field(default_factory=LoraSettings)
    reward_model: Path | None = None  # a `clinserve train reward` output folder
    num_generations: int = 8
    max_completion_length: int = 256
    temperature: float = 1.0
    beta: float = 0.0  # KL weight; 0 skips the reference model, as TRL's default does


@dataclass
class SimPORecipe:
    """CPO-SimPO (TRL's CPOTrainer, simpo loss plus an NLL term) on preference pairs."""

    stage: Literal["simpo"]
    model: ModelSettings
    train: TrainSettings
    data: list[DataSource]
    lora: LoraSettings = field(default_factory=LoraSettings)
    beta: float = 2.0
    simpo_gamma: float = 0.5
    cpo_alpha: float = 1.0  # weight of the NLL term on the chosen answers; 0 is pure SimPO


@dataclass
class SampleRecipe:
    """Rejection sampling: N answers per MCQ from an endpoint, scored into preference pairs."""

    stage: Literal["sample"]
    data: list[DataSource]
    out: Path
    base_url: str
    model: str
    api_key_env: str | None = "CLINSERVE_API_KEY"  # read the key from this variable
    n: int = 8
    temperature: float = 1.0
    max_tokens: int = 512
    concurrency: int = 4
    timeout_s: float = 120.0
    retries: int = 2
    system_prompt: str | None = None
    pairs_per_question: int = 1
    seed: int = 0


Recipe = SFTRecipe | CPTRecipe | RewardRecipe | GRPORecipe | SimPORecipe | SampleRecipe
RECIPES: dict[str, type[Any]] = {
    "sft": SFTRecipe,
    "cpt": CPTRecipe,
    "reward": RewardRecipe,
    "grpo": GRPORecipe,
    "simpo": SimPORecipe,
    "sample": SampleRecipe,
}


def parse_recipe(data: dict[str, Any], stage: Stage, source: Path) -> Recipe:
    """The recipe for `stage` from the YAML mapping (after overrides). Data paths are
    relative to the recipe's folder (a recipe and its data travel together); the model,
    outputs and anything else the machine holds are relative to where the run starts."""
    data = expand_env(data)
    declared = data.setdefault("stage", stage)
    if declared != stage:
        raise RecipeError(
            f"{source}: this is a {declared!r} recipe; run it with `clinserve train {declared}`"
        )
    try:
        recipe: Recipe = build(RECIPES[stage], data)
    except RecipeError as exc:
        raise RecipeError(f"{source}: {exc}") from None
    return _resolve_paths(recipe, source.parent)


def _resolve_paths(recipe: Recipe, base: Path) -> Recipe:
    def at(path: Path) -> Path:
        return path if path.is_absolute() else (base / path)

    for source in recipe.data:
        source.path = at(source.path)
    if isinstance(recipe, RewardRecipe):
        for source in recipe.eval_data:
            source.path = at(source.path)
    return recipe
