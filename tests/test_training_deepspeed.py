"""The packaged DeepSpeed and accelerate configs, validated by the libraries that consume them.

No GPU here, so nothing runs under DeepSpeed; instead transformers fills every "auto" value
from real TrainingArguments and a real model (and reports mismatches), and accelerate builds
its DeepSpeed plugin from each launch config, exactly as they do before a multi-GPU run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from training.recipe import RecipeError
from training.run import DEEPSPEED_DIR, deepspeed_file
from weights.tiny import build_tiny_model

CONFIGS = sorted(DEEPSPEED_DIR.glob("*.json"))
LAUNCH = sorted(DEEPSPEED_DIR.glob("accelerate-*.yaml"))
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Loaded before any DeepSpeed config exists: a live ZeRO-3 config makes from_pretrained
    partition the weights, which needs a distributed launch."""
    from transformers import AutoModelForCausalLM

    folder = build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)
    return AutoModelForCausalLM.from_pretrained(folder)


@pytest.fixture(autouse=True)
def forget_global_config() -> Iterator[None]:
    """transformers keeps the last DeepSpeed config in a module global; drop it after each."""
    yield
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    unset_hf_deepspeed_config()


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_transformers_fills_every_auto_value(path: Path, tiny: Any, tmp_path: Path) -> None:
    from transformers import TrainingArguments
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        gradient_accumulation_steps=2,
        max_grad_norm=0.5,
        report_to="none",
        dataloader_pin_memory=False,
    )
    config = HfTrainerDeepSpeedConfig(str(path))
    config.trainer_config_process(args)
    config.trainer_config_finalize(args, tiny, 100)
    assert "auto" not in json.dumps(config.config)
    assert config.config["train_micro_batch_size_per_gpu"] == 4
    assert config.config["gradient_accumulation_steps"] == 2
    assert config.config["gradient_clipping"] == 0.5
    stage = int(path.stem.removeprefix("zero")[0])
    assert config.get_value("zero_optimization.stage") == stage
    assert config.is_offload() == ("offload" in path.stem)


@pytest.mark.parametrize("path", LAUNCH, ids=lambda p: p.stem)
def test_accelerate_launch_configs_build_the_deepspeed_plugin(path: Path) -> None:
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.utils import DeepSpeedPlugin

    cluster = ClusterConfig.from_yaml_file(str(path))
    assert cluster.distributed_type == "DEEPSPEED"
    settings = cluster.deepspeed_config
    json_file = ROOT / settings["deepspeed_config_file"]  # relative to the repository root
    assert json_file.is_file()
    plugin = DeepSpeedPlugin(
        hf_ds_config=str(json_file), zero3_init_flag=settings["zero3_init_flag"]
    )
    assert plugin.zero_stage == int(path.stem[-1])
    assert settings["zero3_init_flag"] == (plugin.zero_stage == 3)


def test_training_arguments_take_a_packaged_config_by_name(tmp_path: Path) -> None:
    from transformers import TrainingArguments

    args = TrainingArguments(
        output_dir=str(tmp_path), deepspeed=deepspeed_file("zero2"), report_to="none"
    )
    assert args.deepspeed_plugin is not None and args.deepspeed_plugin.zero_stage == 2


def test_an_unknown_config_is_a_clear_error(tmp_path: Path) -> None:
    assert deepspeed_file(None) is None
    own = tmp_path / "mine.json"
    own.write_text("{}", encoding="utf-8")
    assert deepspeed_file(str(own)) == str(own)
    with pytest.raises(RecipeError, match="neither a packaged config .*zero2.* nor a file"):
        deepspeed_file("zero4")
