"""Real peft LoRA adapters on the tiny Qwen2, for the adapter tests (see `weights.tiny_lora`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from weights.tiny import build_tiny_model
from weights.tiny_lora import build_tiny_lora as make_lora

__all__ = ["lora_dir", "make_lora", "tiny_base"]


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)


@pytest.fixture(scope="module")
def lora_dir(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_lora(tiny_base, tmp_path_factory.mktemp("lora") / "adapter")
