"""CPO-SimPO on preference pairs, on TRL's CPOTrainer (Citrus's last stage).

SimPO scores an answer by its length-normalised log-likelihood and asks the chosen answer to
beat the rejected one by a margin (`simpo_gamma`), with no reference model; CPO-SimPO adds a
behaviour-cloning (NLL) term on the chosen answers, weighted by `cpo_alpha`, which keeps the
model's wording stable while it learns the preference. TRL implements both in its CPOTrainer
(`loss_type="simpo"`, `cpo_alpha > 0`), which it keeps under `trl.experimental`.

Pairs come from `clinserve train sample` (rejection sampling, chosen by rule-based answer
correctness), from a feedback export's `preference` lines (the clinician's correction over
what the model said), or from any file in TRL's conversational preference shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.config import SimPORecipe
from training.recipe import RecipeError
from training.run import (
    load_base,
    lora_config,
    model_folder,
    train_and_save,
    trainer_arguments,
)
from training.sft import load_sources


def preference_pairs(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each record's prompt, chosen and rejected (extra fields such as `meta` dropped)."""
    pairs = []
    for record in records:
        kind = record.get("kind", "preference")
        if kind != "preference" or "chosen" not in record:
            raise RecipeError(
                f"simpo trains on preference pairs; a {kind!r} record came in (check data.format)"
            )
        pairs.append({key: record[key] for key in ("prompt", "chosen", "rejected")})
    return pairs


def _cpo() -> tuple[Any, Any]:
    """TRL's CPO config and trainer. TRL warns on every import from `trl.experimental`; the
    warning is known and pinned (trl==1.16.0), so it is silenced here rather than repeated
    in every run's log."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="You are importing from 'trl.experimental'")
        from trl.experimental.cpo import CPOConfig, CPOTrainer
    return CPOConfig, CPOTrainer


def train_simpo(recipe: SimPORecipe) -> Path:
    """Run the recipe; the adapter folder (with its manifest)."""
    from datasets import Dataset

    CPOConfig, CPOTrainer = _cpo()
    folder = model_folder(recipe.model)
    records, hashes = load_sources(recipe.data)
    pairs = preference_pairs(records)
    model, tokenizer = load_base(recipe.model, folder)
    config = CPOConfig(
        **trainer_arguments(recipe.train, recipe.model.dtype),
        max_length=recipe.train.max_length,
        loss_type="simpo",
        beta=recipe.beta,
        simpo_gamma=recipe.simpo_gamma,
        cpo_alpha=recipe.cpo_alpha,
    )
    trainer = CPOTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(pairs),
        processing_class=tokenizer,
        peft_config=lora_config(recipe.lora),
    )
    return train_and_save(trainer, recipe, folder, hashes)
