"""What publishing refuses before anything is copied or loaded, on real peft adapters made on
the tiny Qwen2, and where adapter locations may point."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from server.adapters.inspect import AdapterRefused, inspect_adapter
from server.adapters.location import OutsideRoot, resolve_location
from tests.adapter_fixtures import lora_dir, make_lora, tiny_base
from training.manifest import AdapterManifest
from weights.fingerprint import file_sha256

__all__ = ["lora_dir", "tiny_base"]  # fixtures, re-exported for pytest


@pytest.fixture
def copy_of(lora_dir: Path, tmp_path: Path) -> Callable[..., Path]:
    """`copy_of(**config_changes)`: a private copy of the adapter, its config edited."""

    def copy(**changes: Any) -> Path:
        target = tmp_path / f"copy{len(list(tmp_path.iterdir()))}"
        shutil.copytree(lora_dir, target)
        if changes:
            config_path = target / "adapter_config.json"
            config = json.loads(config_path.read_text())
            config.update(changes)
            config_path.write_text(json.dumps(config))
        return target

    return copy


def test_a_real_peft_adapter_passes_with_what_its_files_say(lora_dir: Path) -> None:
    files = inspect_adapter(lora_dir, max_rank=64)
    assert files.rank == 8 and files.alpha == 16.0
    assert files.target_modules == ("q_proj", "v_proj")
    assert files.weights_sha256 == file_sha256(lora_dir / "adapter_model.safetensors")
    assert files.trained_on is not None and files.manifest is None


def test_per_module_ranks_are_accepted_and_count_toward_the_limit(
    tiny_base: Path, tmp_path: Path
) -> None:
    adapter = make_lora(tiny_base, tmp_path / "a", rank=8, rank_pattern={"v_proj": 16})
    assert inspect_adapter(adapter, max_rank=16).rank == 8
    with pytest.raises(AdapterRefused, match="rank 16 is above the workers' limit of 8"):
        inspect_adapter(adapter, max_rank=8)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"peft_type": "PREFIX_TUNING"}, "peft_type 'PREFIX_TUNING', not LORA"),
        ({"r": 0}, "ranks must be positive integers"),
        ({"r": "8"}, "ranks must be positive integers"),
        ({"use_dora": True}, "DoRA"),
        ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
        ({"bias": "all"}, "trained biases"),
        ({"init_lora_weights": "pissa"}, "changes the base weights"),
        ({"use_qalora": True}, "QALoRA"),
        ({"target_modules": []}, "target_modules must name modules"),
        ({"r": 4}, r"has shape \[8, 128\], not \[4, n\]"),
    ],
)
def test_configs_vllm_would_refuse_are_refused_here(
    copy_of: Callable[..., Path], changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(AdapterRefused, match=message):
        inspect_adapter(copy_of(**changes), max_rank=64)


def test_rank_above_the_workers_limit(lora_dir: Path) -> None:
    with pytest.raises(AdapterRefused, match="rank 8 is above the workers' limit of 4"):
        inspect_adapter(lora_dir, max_rank=4)


def test_not_an_adapter(tmp_path: Path, tiny_base: Path) -> None:
    with pytest.raises(AdapterRefused, match="not a folder"):
        inspect_adapter(tmp_path / "missing", max_rank=64)
    with pytest.raises(AdapterRefused, match="no adapter_config.json, so not a peft adapter"):
        inspect_adapter(tiny_base, max_rank=64)  # a whole model is not an adapter
    with pytest.raises(AdapterRefused, match="URLs are not accepted"):
        inspect_adapter("s3://bucket/adapter", max_rank=64)
    with pytest.raises(AdapterRefused, match="URLs are not accepted"):
        inspect_adapter("https://example.org/adapter", max_rank=64)


def test_weights_must_be_complete_safetensors_lora_pairs(copy_of: Callable[..., Path]) -> None:
    missing = copy_of()
    (missing / "adapter_model.safetensors").unlink()
    with pytest.raises(AdapterRefused, match="adapter_model.safetensors is missing"):
        inspect_adapter(missing, max_rank=64)

    pickled = copy_of()
    (pickled / "adapter_model.safetensors").rename(pickled / "adapter_model.bin")
    with pytest.raises(AdapterRefused, match="is a pickle, which can run code"):
        inspect_adapter(pickled, max_rank=64)

    truncated = copy_of()
    weights = truncated / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(AdapterRefused, match="truncated"):
        inspect_adapter(truncated, max_rank=64)

    garbage = copy_of()
    (garbage / "adapter_model.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(AdapterRefused, match="not a safetensors file"):
        inspect_adapter(garbage, max_rank=64)


def test_symlinks_and_bad_manifests_are_refused(copy_of: Callable[..., Path]) -> None:
    linked = copy_of()
    os.symlink("/etc/passwd", linked / "notes.txt")
    with pytest.raises(AdapterRefused, match="symlinks are not accepted"):
        inspect_adapter(linked, max_rank=64)

    wrong_rank = copy_of()
    AdapterManifest(base_model="tiny", rank=16, target_modules=["q_proj"]).write(wrong_rank)
    with pytest.raises(AdapterRefused, match="the manifest says rank 16"):
        inspect_adapter(wrong_rank, max_rank=64)

    unknown_field = copy_of()
    (unknown_field / "clinserve_manifest.json").write_text(
        json.dumps({"base_model": "tiny", "rank": 8, "target_modules": ["q_proj"], "evals": {}})
    )
    with pytest.raises(AdapterRefused, match="evals: Extra inputs are not permitted"):
        inspect_adapter(unknown_field, max_rank=64)

    not_json = copy_of()
    (not_json / "clinserve_manifest.json").write_text("{")
    with pytest.raises(AdapterRefused, match="clinserve_manifest.json is unreadable"):
        inspect_adapter(not_json, max_rank=64)


@pytest.mark.parametrize("location", ["../elsewhere", "med/../../x", "/etc", "", ".", "med/.."])
def test_locations_outside_the_root_are_refused(tmp_path: Path, location: str) -> None:
    with pytest.raises(OutsideRoot):
        resolve_location(tmp_path / "adapters", location)


def test_locations_inside_the_root_resolve(tmp_path: Path) -> None:
    root = tmp_path / "adapters"
    assert resolve_location(root, "med/3") == root.resolve() / "med" / "3"
