"""What every trainer does around TRL: load the base, describe the LoRA, set the shared
arguments, and write the adapter with its manifest.

Each stage module (`training.sft`, `training.simpo`, `training.grpo`) builds its TRL config
from `trainer_arguments` plus its own keys, so the `train:` group of a recipe means the same
thing in every stage. The output folder is `train.output_dir/adapter`: peft's files plus
`clinserve_manifest.json`, which is exactly what `clinserve adapters publish` takes.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.config import LoraSettings, ModelSettings, TrainSettings
from training.manifest import AdapterManifest
from training.recipe import RecipeError

if TYPE_CHECKING:
    from peft import LoraConfig
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

PACKAGED = "packaged"  # `model.path: packaged` is the model `clinserve model pull` installed
DEEPSPEED_DIR = Path(__file__).resolve().parent / "deepspeed"
ADAPTER_FOLDER = "adapter"


def model_folder(settings: ModelSettings) -> Path:
    """The base model's folder: a local transformers folder, or the pulled packaged model."""
    from weights.errors import ModelNotFound
    from weights.location import resolve_model

    if str(settings.path) == PACKAGED:
        try:
            return Path(resolve_model(None))
        except ModelNotFound as exc:
            raise RecipeError(f"model.path: {exc}") from None
    path = settings.path.expanduser()
    if not (path / "config.json").is_file():
        raise RecipeError(
            f"model.path: {path} is not a model folder (no config.json); training reads local "
            "weights only: use `packaged`, a converted model folder, or `clinserve model tiny DIR`"
        )
    return path.resolve()


def served_name(settings: ModelSettings, folder: Path) -> str:
    """The name the workers serve the base under (the manifest must match it to publish)."""
    return settings.served_name or folder.name


def load_base(
    settings: ModelSettings, folder: Path
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The base model and its tokenizer, with a pad token (batching needs one)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = settings.dtype
    if dtype == "auto":
        dtype = "bfloat16" if torch.cuda.is_available() else "float32"
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=getattr(torch, dtype))
    return model, tokenizer


def lora_config(settings: LoraSettings, task_type: str = "CAUSAL_LM") -> LoraConfig:
    from peft import LoraConfig

    return LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
        task_type=task_type,
    )


def deepspeed_file(setting: str | None) -> str | None:
    """`zero2` / `zero3`: the packaged configs; anything else: a JSON file that must exist."""
    if setting is None:
        return None
    packaged = DEEPSPEED_DIR / f"{setting}.json"
    if packaged.is_file():
        return str(packaged)
    path = Path(setting).expanduser()
    if not path.is_file():
        raise RecipeError(
            f"train.deepspeed: {setting!r} is neither a packaged config "
            f"({', '.join(sorted(p.stem for p in DEEPSPEED_DIR.glob('*.json')))}) nor a file"
        )
    return str(path)


def trainer_arguments(train: TrainSettings, model_dtype: str) -> dict[str, Any]:
    """The `train:` group as keyword arguments every TRL config (a TrainingArguments) takes."""
    import torch

    bf16 = torch.cuda.is_available() and model_dtype in ("auto", "bfloat16")
    return {
        "output_dir": str(train.output_dir),
        "max_steps": train.max_steps,
        "num_train_epochs": train.epochs,
        "learning_rate": train.learning_rate,
        "per_device_train_batch_size": train.batch_size,
        "gradient_accumulation_steps": train.gradient_accumulation_steps,
        "warmup_steps": train.warmup_ratio,  # a float below 1 is a ratio in transformers 5
        "logging_steps": train.logging_steps,
        "save_steps": train.save_steps,
        "seed": train.seed,
        "gradient_checkpointing": train.gradient_checkpointing,
        "deepspeed": deepspeed_file(train.deepspeed),
        "bf16": bf16,
        "dataloader_pin_memory": torch.cuda.is_available(),  # pinning without a GPU only warns
        "report_to": "none",
        "disable_tqdm": True,
    }


def train_metrics(log_history: list[dict[str, Any]]) -> dict[str, float]:
    """First and last logged training loss and the run's totals, for the manifest."""
    losses = [entry["loss"] for entry in log_history if "loss" in entry]
    out: dict[str, float] = {}
    if losses:
        out["train_loss_first"] = float(losses[0])
        out["train_loss_last"] = float(losses[-1])
    for entry in log_history:
        for key in ("train_loss", "train_runtime", "train_steps_per_second"):
            if key in entry:
                out[key] = float(entry[key])
    tokens = [entry["num_tokens"] for entry in log_history if "num_tokens" in entry]
    if tokens:
        out["tokens"] = float(max(tokens))  # SFT-family trainers count the tokens they saw
    steps = [entry["step"] for entry in log_history if "step" in entry]
    if steps:
        out["steps"] = float(max(steps))
    return {key: value for key, value in out.items() if math.isfinite(value)}


def write_adapter(
    trainer: Any,
    *,
    base_name: str,
    base_folder: Path,
    lora: LoraSettings,
    recipe: Any,
    data_sha256: dict[str, str],
    output_dir: Path,
) -> Path:
    """Save the trained adapter and its manifest into `output_dir/adapter`; the folder."""
    from weights.fingerprint import fingerprint

    folder = output_dir / ADAPTER_FOLDER
    trainer.save_model(str(folder))
    manifest = AdapterManifest(
        base_model=base_name,
        base_model_sha256=fingerprint(base_folder),
        rank=lora.rank,
        target_modules=list(lora.target_modules),
        recipe=json.loads(json.dumps(asdict(recipe), default=str)),
        data_sha256=data_sha256,
        metrics=train_metrics(trainer.state.log_history),
        created_at=datetime.now(UTC),
    )
    manifest.write(folder)
    return folder


def train_and_save(
    trainer: Any, recipe: Any, base_folder: Path, data_sha256: dict[str, str]
) -> Path:
    """Run `trainer` (any TRL trainer built for an adapter recipe) and write its adapter."""
    trainer.train()
    return write_adapter(
        trainer,
        base_name=served_name(recipe.model, base_folder),
        base_folder=base_folder,
        lora=recipe.lora,
        recipe=recipe,
        data_sha256=data_sha256,
        output_dir=recipe.train.output_dir,
    )
