"""Publish an adapter folder: check it, gate it, copy it under the adapters root, register it.

The copy is what gets served, so it is made into a hidden staging folder, its weights are
hashed again (a folder still being written by a trainer must not publish half a file), and
it is moved to `NAME/VERSION` inside the registering transaction. Nothing is registered, and
nothing is left in the root, unless every check passes.
"""

from __future__ import annotations

import operator
import os
import re
import secrets
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from server.adapters.inspect import WEIGHTS_FILE, AdapterFiles, AdapterRefused, inspect_adapter
from server.adapters.location import resolve_location
from server.adapters.registry import AdapterRegistry, AdapterVersion, NewVersion, check_name
from training.manifest import AdapterManifest
from weights.fingerprint import file_sha256

_GATE = re.compile(r"\s*([A-Za-z0-9_.:/-]+)\s*(>=|<=|>|<)\s*(-?[0-9]*\.?[0-9]+)\s*")
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}


@dataclass(frozen=True)
class EvalGate:
    """`metric>=0.6`: a condition the manifest's evaluation results must meet."""

    metric: str
    comparison: str
    threshold: float

    @classmethod
    def parse(cls, text: str) -> EvalGate:
        match = _GATE.fullmatch(text)
        if match is None:
            raise AdapterRefused(
                f"evaluation gate {text!r}: write METRIC>=VALUE (or <=, >, <), e.g. "
                "medqa_accuracy>=0.6"
            )
        return cls(match.group(1), match.group(2), float(match.group(3)))

    def check(self, evaluation: dict[str, float]) -> None:
        value = evaluation.get(self.metric)
        if value is None:
            raise AdapterRefused(
                f"evaluation gate {self}: the manifest reports no {self.metric!r} "
                f"(it reports {', '.join(sorted(evaluation)) or 'nothing'})"
            )
        if not _COMPARE[self.comparison](value, self.threshold):
            raise AdapterRefused(f"evaluation gate {self} failed: {self.metric} is {value:g}")

    def __str__(self) -> str:
        return f"{self.metric}{self.comparison}{self.threshold:g}"


@dataclass(frozen=True)
class ServedBase:
    """The base model the workers serve: its name, and its fingerprint when this machine
    holds its weights (None: the fingerprint cannot be checked here)."""

    name: str
    sha256: str | None = None


def publish(
    source: str | Path,
    name: str,
    *,
    registry: AdapterRegistry,
    root: Path,
    base: ServedBase,
    max_rank: int,
    canary_percent: int | None = None,
    gates: Sequence[EvalGate] = (),
) -> AdapterVersion:
    """Register `source` as the next version of `name`; `AdapterRefused` if it fails a check."""
    check_name(name)
    files = inspect_adapter(source, max_rank)
    manifest = _manifest_for(files, base)
    for gate in gates:
        gate.check(manifest.evaluation)
    staging = _copy_to_staging(files, root / name)
    try:

        def place(location: str) -> None:
            final = resolve_location(root, location)
            if final.exists():  # left by a publish whose commit failed: no row claims it
                shutil.rmtree(final)
            os.replace(staging, final)

        return registry.register(
            name,
            NewVersion(
                base_model=manifest.base_model,
                base_model_sha256=manifest.base_model_sha256,
                weights_sha256=files.weights_sha256,
                rank=files.rank,
                target_modules=files.target_modules,
                manifest=manifest.model_dump(mode="json"),
                place=place,
            ),
            canary_percent,
        )
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def _manifest_for(files: AdapterFiles, base: ServedBase) -> AdapterManifest:
    """The adapter's manifest, checked against the served base; one built from peft's
    config (base = the served model, as the operator asserted) when training wrote none."""
    manifest = files.manifest
    if manifest is None:
        return AdapterManifest(
            base_model=base.name, rank=files.rank, target_modules=list(files.target_modules)
        )
    if manifest.base_model != base.name:
        raise AdapterRefused(
            f"trained on base model {manifest.base_model!r}, but the workers serve {base.name!r}"
        )
    if base.sha256 and manifest.base_model_sha256 and manifest.base_model_sha256 != base.sha256:
        raise AdapterRefused(
            f"trained on other weights than the served {base.name!r}: base fingerprint "
            f"{manifest.base_model_sha256[:12]}..., served {base.sha256[:12]}..."
        )
    return manifest


def _copy_to_staging(files: AdapterFiles, parent: Path) -> Path:
    parent.mkdir(parents=True, exist_ok=True)
    staging = parent / f".incoming-{secrets.token_hex(6)}"
    try:
        shutil.copytree(files.path, staging, symlinks=True)
        if file_sha256(staging / WEIGHTS_FILE) != files.weights_sha256:
            raise AdapterRefused(
                f"{WEIGHTS_FILE} changed while it was being copied: publish a finished folder"
            )
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging
