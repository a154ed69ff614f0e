"""One entry per stage: validate a recipe without training, or run it and report.

The command line (`training.cli`) and tests call these two functions only, so what a stage
needs before it starts (data that parses, a model folder that exists, rewards that are
known) is checked in one place, and every stage reports in the same JSON shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.config import (
    CPTRecipe,
    GRPORecipe,
    Recipe,
    RewardRecipe,
    SampleRecipe,
    SFTRecipe,
    SimPORecipe,
)
from training.recipe import RecipeError
from training.run import model_folder


def check(recipe: Recipe) -> dict[str, Any]:
    """Everything that can be checked without loading a model; a summary, or RecipeError."""
    from training.data import load_records

    records = {
        str(source.path): len(load_records(source.path, source.format, source.limit))
        for source in recipe.data
    }
    summary: dict[str, Any] = {"records": records}
    if not isinstance(recipe, SampleRecipe):
        summary["model"] = str(model_folder(recipe.model))
    if isinstance(recipe, GRPORecipe):
        summary["rewards"] = [term.name for term in _checked_rewards(recipe)]
    return summary


def run_stage(recipe: Recipe) -> dict[str, Any]:
    """Run the recipe's stage; `{"stage", what it wrote, "metrics"}`."""
    if isinstance(recipe, SFTRecipe):
        from training.sft import train_sft

        return _adapter_result("sft", train_sft(recipe))
    if isinstance(recipe, CPTRecipe):
        from training.sft import train_cpt

        return _adapter_result("cpt", train_cpt(recipe))
    if isinstance(recipe, SimPORecipe):
        from training.simpo import train_simpo

        return _adapter_result("simpo", train_simpo(recipe))
    if isinstance(recipe, GRPORecipe):
        _checked_rewards(recipe)
        from training.grpo import train_grpo

        return _adapter_result("grpo", train_grpo(recipe))
    if isinstance(recipe, RewardRecipe):
        return _reward(recipe)
    return _sample(recipe)


def _adapter_result(stage: str, adapter: Path) -> dict[str, Any]:
    from training.manifest import read_manifest

    manifest = read_manifest(adapter)
    return {
        "stage": stage,
        "adapter": str(adapter),
        "base_model": manifest.base_model if manifest else None,
        "metrics": manifest.metrics if manifest else {},
    }


def _checked_rewards(recipe: GRPORecipe) -> list[Any]:
    from training.rewards import REWARDS

    for term in recipe.rewards:
        if term.name == "reward_model":
            if recipe.reward_model is None:
                raise RecipeError("rewards: reward_model needs the `reward_model` folder setting")
        elif term.name not in REWARDS:
            raise RecipeError(
                f"rewards: unknown reward {term.name!r}; one of: "
                + ", ".join([*sorted(REWARDS), "reward_model"])
            )
    if not recipe.rewards:
        raise RecipeError("rewards: name at least one reward")
    return list(recipe.rewards)


def _reward(recipe: RewardRecipe) -> dict[str, Any]:
    from training.reward_model import RewardModelSettings, train_reward_model
    from training.sft import load_sources

    records, _ = load_sources(recipe.data)
    held_out = load_sources(recipe.eval_data)[0] if recipe.eval_data else None
    settings = RewardModelSettings(
        dimensions=tuple(recipe.dimensions),
        safety_dimension=recipe.safety_dimension,
        safety_threshold=recipe.safety_threshold,
        weights=recipe.weights,
        max_length=recipe.train.max_length,
        lora_rank=recipe.lora_rank,
        learning_rate=recipe.train.learning_rate,
        epochs=recipe.train.epochs,
        batch_size=recipe.train.batch_size,
        seed=recipe.train.seed,
    )
    out = recipe.train.output_dir / "reward_model"
    metrics = train_reward_model(model_folder(recipe.model), records, settings, out, held_out)
    return {"stage": "reward", "reward_model": str(out), "metrics": metrics}


def _sample(recipe: SampleRecipe) -> dict[str, Any]:
    import os
    from dataclasses import asdict

    from training.sampling import SamplingSettings, run_sampling
    from training.sft import load_sources

    items, _ = load_sources(recipe.data)
    key = os.environ.get(recipe.api_key_env) if recipe.api_key_env else None
    settings = SamplingSettings(
        base_url=recipe.base_url,
        model=recipe.model,
        api_key=key,
        n=recipe.n,
        temperature=recipe.temperature,
        max_tokens=recipe.max_tokens,
        concurrency=recipe.concurrency,
        timeout_s=recipe.timeout_s,
        retries=recipe.retries,
        system_prompt=recipe.system_prompt,
        pairs_per_question=recipe.pairs_per_question,
        seed=recipe.seed,
    )
    report = run_sampling(items, settings, recipe.out)
    return {"stage": "sample", "pairs_file": str(recipe.out), "report": asdict(report)}
