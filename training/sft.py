"""LoRA supervised fine-tuning and continued pre-training, on TRL's SFTTrainer.

SFT reads chats (and the `sft` lines of a feedback export) as prompt/completion pairs: the
conversation up to the last assistant turn is the prompt, that turn the completion, and the
loss covers the completion only (`completion_only_loss`), so the model learns to answer, not
to write patients' messages. Earlier assistant turns stay as context. This works with any
chat template, where TRL's `assistant_only_loss` needs `{% generation %}` markers that most
templates, ours included, do not have. With `five_step_reasoning` the target becomes
PrMed's reasoning chain (`training.reasoning`), and `augment` adds perturbed copies of the
patients' messages (`training.augment`).

CPT reads raw text and trains on every token, packed into full-length sequences.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.config import CPTRecipe, DataSource, SFTRecipe
from training.recipe import RecipeError
from training.run import (
    load_base,
    lora_config,
    model_folder,
    train_and_save,
    trainer_arguments,
)


def load_sources(sources: list[DataSource]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Every source's validated records, and each file's SHA-256 for the manifest."""
    from training.data import file_sha256, load_records

    records: list[dict[str, Any]] = []
    hashes: dict[str, str] = {}
    for source in sources:
        records += load_records(source.path, source.format, source.limit)
        hashes[source.path.name] = file_sha256(source.path)
    return records, hashes


def chat_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chats (and feedback corrections) only; a recipe mixing in other kinds is an error."""
    chats = []
    for record in records:
        kind = record.get("kind", "chat")
        if kind != "chat" or "messages" not in record:
            raise RecipeError(f"sft trains on chats; a {kind!r} record came in (check data.format)")
        chats.append(record)
    return chats


def prompt_completion(record: dict[str, Any]) -> dict[str, Any]:
    """A chat as TRL's conversational prompt/completion pair (the last turn is the target)."""
    messages = record["messages"]
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def sft_examples(recipe: SFTRecipe) -> tuple[list[dict[str, Any]], dict[str, str]]:
    records, hashes = load_sources(recipe.data)
    chats = chat_records(records)
    if recipe.augment.ratio > 0:
        from training.augment import augment_records

        chats = augment_records(chats, recipe.augment)
    if recipe.five_step_reasoning:
        from training.reasoning import with_reasoning

        chats = [with_reasoning(chat) for chat in chats]
    return [prompt_completion(chat) for chat in chats], hashes


def train_sft(recipe: SFTRecipe) -> Path:
    """Run the recipe; the adapter folder (with its manifest)."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    folder = model_folder(recipe.model)
    examples, hashes = sft_examples(recipe)
    model, tokenizer = load_base(recipe.model, folder)
    config = SFTConfig(
        **trainer_arguments(recipe.train, recipe.model.dtype),
        max_length=recipe.train.max_length,
        completion_only_loss=recipe.completion_only_loss,
    )
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(examples),
        processing_class=tokenizer,
        peft_config=lora_config(recipe.lora),
    )
    return train_and_save(trainer, recipe, folder, hashes)


def train_cpt(recipe: CPTRecipe) -> Path:
    """Continued pre-training on raw text; the adapter folder (with its manifest)."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    folder = model_folder(recipe.model)
    records, hashes = load_sources(recipe.data)
    texts = [{"text": record["text"]} for record in records if record.get("text")]
    if not texts:
        raise RecipeError("cpt trains on raw text; no record has a `text` (check data.format)")
    model, tokenizer = load_base(recipe.model, folder)
    config = SFTConfig(
        **trainer_arguments(recipe.train, recipe.model.dtype),
        max_length=recipe.train.max_length,
        packing=recipe.packing,
        dataset_text_field="text",
        completion_only_loss=False,
    )
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(texts),
        processing_class=tokenizer,
        peft_config=lora_config(recipe.lora),
    )
    return train_and_save(trainer, recipe, folder, hashes)
