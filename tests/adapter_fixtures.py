"""Real peft LoRA adapters on the tiny Qwen2, for the adapter tests.

`make_lora` trains nothing: it initialises lora_B with non-zero values (peft starts it at
zero, which would make every adapter answer like the base) and saves with peft, so the files
are exactly what a training run writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from weights.tiny import build_tiny_model


def make_lora(
    base_dir: Path,
    out_dir: Path,
    *,
    rank: int = 8,
    seed: int = 0,
    targets: tuple[str, ...] = ("q_proj", "v_proj"),
    **config: Any,
) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir)
    lora = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=list(targets), **config)
    peft_model = get_peft_model(model, lora)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.5)
    peft_model.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)


@pytest.fixture(scope="module")
def lora_dir(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_lora(tiny_base, tmp_path_factory.mktemp("lora") / "adapter")
