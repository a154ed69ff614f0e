"""A real peft LoRA adapter on the tiny Qwen2 (`weights.tiny`), for tests and benchmarks.

Nothing is trained: lora_B is drawn non-zero (peft starts it at zero, which would make every
adapter answer exactly like the base) and the adapter is saved with peft, so the files are
exactly what a training run writes. Every draw, peft's own lora_A initialisation included,
comes from `seed`, so an adapter is the same on every machine: a test that found two seeds
answering differently keeps finding it (lora_A once came from the global generator, and CI
drew an adapter whose greedy answer was the base model's).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def build_tiny_lora(
    base_dir: Path,
    out_dir: Path,
    *,
    rank: int = 8,
    seed: int = 0,
    targets: tuple[str, ...] = ("q_proj", "v_proj"),
    **config: Any,
) -> Path:
    """Save an adapter for the model in `base_dir` into `out_dir`; `config` goes to peft's
    LoraConfig (e.g. `rank_pattern`)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir)
    lora = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=list(targets), **config)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        peft_model = get_peft_model(model, lora)
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.5)
    peft_model.save_pretrained(str(out_dir))
    return out_dir
