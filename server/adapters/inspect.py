"""Check that a folder is a LoRA adapter the workers can serve, before anything copies or
loads it.

vLLM reports a bad adapter only when a worker tries to load it, one worker at a time, under
load; so everything that can be checked from the files is checked here, with an error that
says what to fix: a peft LoRA config, safetensors weights whose lora_A/lora_B shapes match the
rank, a rank within the workers' `--max-lora-rank`, none of the peft features vLLM refuses
(DoRA, `modules_to_save`, trained biases, ...), no symlinks or special files (a published
copy must be self-contained and must not reach outside its folder). Pickled `.bin` weights
are refused: loading a pickle can run arbitrary code in the worker.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.manifest import AdapterManifest, ManifestError, read_manifest
from weights.fingerprint import file_sha256

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
MAX_HEADER_BYTES = 100 * 1024 * 1024
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_LORA_A = re.compile(r"\.lora_A(?:\.[^.]+)?\.weight$")
_LORA_B = re.compile(r"\.lora_B(?:\.[^.]+)?\.weight$")


_PLAIN_INITS = ("gaussian", "eva", "orthogonal", "mica", "lora_ga")
"""Initialisations that leave a saved adapter a plain LoRA (vLLM's own list)."""
_OTHER_UNSUPPORTED = {
    "alora_invocation_tokens": "Activated LoRA (alora_invocation_tokens)",
    "layer_replication": "layer_replication",
    "use_bdlora": "block-diagonal LoRA (use_bdlora)",
    "use_qalora": "QALoRA (use_qalora)",
}


class AdapterRefused(ValueError):
    """The folder is not an adapter these workers can serve; the message says why."""


@dataclass(frozen=True)
class AdapterFiles:
    """What the files say about an adapter that passed every check."""

    path: Path
    rank: int
    alpha: float
    target_modules: tuple[str, ...]
    trained_on: str | None  # peft's base_model_name_or_path: where training found the base
    weights_sha256: str
    manifest: AdapterManifest | None


def inspect_adapter(location: str | Path, max_rank: int) -> AdapterFiles:
    """The adapter at `location`, or `AdapterRefused`."""
    if _URL.match(str(location)):
        raise AdapterRefused(
            f"{location}: URLs are not accepted; copy the adapter to a local folder first"
        )
    path = Path(location).expanduser()
    if not path.is_dir():
        raise AdapterRefused(f"{path}: not a folder")
    _refuse_links_and_special_files(path)
    config = _read_config(path)
    ranks = _ranks(config)
    rank = ranks[0]
    if max(ranks) > max_rank:
        raise AdapterRefused(
            f"rank {max(ranks)} is above the workers' limit of {max_rank} (vLLM "
            "--max-lora-rank, CLINSERVE_LOCAL_WORKER__MAX_LORA_RANK for the local worker)"
        )
    unsupported = _unsupported_features(config)
    if unsupported:
        raise AdapterRefused(f"{CONFIG_FILE}: vLLM does not serve {'; '.join(unsupported)}")
    targets = _target_modules(config.get("target_modules"))
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        pickled = path / "adapter_model.bin"
        raise AdapterRefused(
            f"{pickled.name} is a pickle, which can run code when loaded: save with "
            "safetensors (peft's default)"
            if pickled.exists()
            else f"{WEIGHTS_FILE} is missing"
        )
    _check_weights(weights, set(ranks))
    try:
        manifest = read_manifest(path)
    except ManifestError as exc:
        raise AdapterRefused(str(exc)) from None
    if manifest is not None and manifest.rank != rank:
        raise AdapterRefused(f"the manifest says rank {manifest.rank}, {CONFIG_FILE} says {rank}")
    alpha = config.get("lora_alpha", rank)
    return AdapterFiles(
        path=path.resolve(),
        rank=rank,
        alpha=float(alpha) if isinstance(alpha, int | float) else float(rank),
        target_modules=targets,
        trained_on=config.get("base_model_name_or_path"),
        weights_sha256=file_sha256(weights),
        manifest=manifest,
    )


def _refuse_links_and_special_files(path: Path) -> None:
    for entry in path.rglob("*"):
        if entry.is_symlink():
            raise AdapterRefused(f"{entry}: symlinks are not accepted in an adapter folder")
        if not (entry.is_file() or entry.is_dir()):
            raise AdapterRefused(f"{entry}: not a regular file")


def _read_config(path: Path) -> dict[str, Any]:
    config_path = path / CONFIG_FILE
    if not config_path.is_file():
        raise AdapterRefused(f"{path}: no {CONFIG_FILE}, so not a peft adapter")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdapterRefused(f"{CONFIG_FILE} is not JSON: {exc}") from None
    if not isinstance(config, dict):
        raise AdapterRefused(f"{CONFIG_FILE} is not a JSON object")
    if config.get("peft_type") != "LORA":
        raise AdapterRefused(f"{CONFIG_FILE}: peft_type {config.get('peft_type')!r}, not LORA")
    return config


def _ranks(config: dict[str, Any]) -> list[int]:
    """`r` first, then any per-module ranks from `rank_pattern`."""
    ranks = [config.get("r"), *(config.get("rank_pattern") or {}).values()]
    for rank in ranks:
        if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
            raise AdapterRefused(f"{CONFIG_FILE}: ranks must be positive integers, got {rank!r}")
    return ranks


def _unsupported_features(config: dict[str, Any]) -> list[str]:
    """The peft features vLLM refuses at load time (vllm/lora/peft_helper.py), named."""
    found = []
    if config.get("use_dora"):
        found.append("DoRA (use_dora)")
    if config.get("modules_to_save"):
        found.append(f"fully trained modules (modules_to_save {config['modules_to_save']!r})")
    if config.get("bias", "none") != "none" or config.get("lora_bias"):
        found.append("trained biases (bias / lora_bias)")
    init = config.get("init_lora_weights", True)
    if isinstance(init, str) and init.lower() not in _PLAIN_INITS:
        found.append(f"init_lora_weights={init!r}, which changes the base weights")
    for flag, what in _OTHER_UNSUPPORTED.items():
        if config.get(flag):
            found.append(what)
    return found


def _target_modules(value: object) -> tuple[str, ...]:
    """peft allows a list of module names or one regular expression."""
    if isinstance(value, str) and value:
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return tuple(sorted(value))
    raise AdapterRefused(f"{CONFIG_FILE}: target_modules must name modules, got {value!r}")


def _check_weights(weights: Path, ranks: set[int]) -> None:
    """Read the safetensors header (no tensor data) and check the LoRA pairs' shapes."""
    header = _safetensors_header(weights)
    tensors = {name: spec for name, spec in header.items() if name != "__metadata__"}
    a_shapes = [spec.get("shape") for name, spec in tensors.items() if _LORA_A.search(name)]
    b_count = sum(1 for name in tensors if _LORA_B.search(name))
    if not a_shapes or len(a_shapes) != b_count:
        raise AdapterRefused(
            f"{WEIGHTS_FILE}: expected lora_A/lora_B weight pairs, found {len(a_shapes)} A "
            f"and {b_count} B tensors"
        )
    for shape in a_shapes:
        if not (isinstance(shape, list) and len(shape) == 2 and shape[0] in ranks):
            expected = " or ".join(f"[{rank}, n]" for rank in sorted(ranks))
            raise AdapterRefused(
                f"{WEIGHTS_FILE}: a lora_A tensor has shape {shape}, not {expected} as "
                f"{CONFIG_FILE} says"
            )


def _safetensors_header(weights: Path) -> dict[str, Any]:
    size = weights.stat().st_size
    with weights.open("rb") as stream:
        prefix = stream.read(8)
        if len(prefix) < 8:
            raise AdapterRefused(f"{WEIGHTS_FILE}: too short to be safetensors")
        (length,) = struct.unpack("<Q", prefix)
        if length > min(MAX_HEADER_BYTES, size - 8):
            raise AdapterRefused(f"{WEIGHTS_FILE}: not a safetensors file (bad header length)")
        try:
            header = json.loads(stream.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise AdapterRefused(f"{WEIGHTS_FILE}: not a safetensors file") from None
    if not isinstance(header, dict):
        raise AdapterRefused(f"{WEIGHTS_FILE}: not a safetensors file")
    ends = [
        spec["data_offsets"][1]
        for name, spec in header.items()
        if name != "__metadata__" and isinstance(spec, dict) and "data_offsets" in spec
    ]
    if ends and 8 + length + max(ends) > size:
        raise AdapterRefused(f"{WEIGHTS_FILE}: truncated (the header promises more data)")
    return header
