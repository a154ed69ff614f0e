"""The adapter manifest: what training says about an adapter, and what serving checks.

A published adapter directory holds peft's files plus `clinserve_manifest.json`: the base
model it was trained on (its served name and a fingerprint of its weights), its LoRA shape,
the recipe, hashes of the data it saw, its training metrics and its evaluation results. The
registry stores the manifest with the version, the publish command's evaluation gate reads
`evaluation`, and the gateway refuses an adapter whose base model is not the one its workers
serve. This module imports pydantic only: the gateway and the trainers both depend on it.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MANIFEST_FILE = "clinserve_manifest.json"
SHA256_HEX = r"^[0-9a-f]{64}$"


class ManifestError(ValueError):
    """The manifest file exists but cannot be read as a manifest."""


class AdapterManifest(BaseModel):
    """Everything but the weights, as training wrote it. Unknown fields are refused: a
    misspelt `evaluation` key would otherwise pass an evaluation gate by being absent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    base_model: str = Field(min_length=1, max_length=200, description="served name of the base")
    base_model_sha256: str | None = Field(
        default=None, pattern=SHA256_HEX, description="`weights.fingerprint` of the base model"
    )
    rank: int = Field(ge=1)
    target_modules: list[str] = Field(min_length=1)
    recipe: dict[str, Any] = Field(default_factory=dict)
    data_sha256: dict[str, str] = Field(
        default_factory=dict, description="dataset name -> SHA-256 of the file trained on"
    )
    evaluation: dict[str, float] = Field(
        default_factory=dict, description="metric -> value, e.g. medqa_accuracy -> 0.61"
    )
    metrics: dict[str, float] = Field(
        default_factory=dict, description="what training measured, e.g. train_loss -> 1.92"
    )
    created_at: datetime | None = None

    def write(self, adapter_dir: Path) -> Path:
        path = adapter_dir / MANIFEST_FILE
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return path


def read_manifest(adapter_dir: Path) -> AdapterManifest | None:
    """The directory's manifest, None if it has none; `ManifestError` if it is unreadable."""
    path = adapter_dir / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        return AdapterManifest.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or 'manifest'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ManifestError(f"{MANIFEST_FILE}: {problems}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{MANIFEST_FILE} is unreadable: {exc}") from None
