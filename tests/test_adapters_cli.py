"""`clinserve adapters ...` in a subprocess, as an operator runs it: publish prints the new
version as JSON, the state commands act on the registry, and refusals are one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.adapter_fixtures import lora_dir, make_lora, tiny_base
from training.manifest import AdapterManifest
from weights.fingerprint import fingerprint
from weights.tiny import build_tiny_model

__all__ = ["lora_dir", "tiny_base"]  # fixtures, re-exported for pytest


def adapters(tmp_path: Path, base: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m cli.main adapters ...` with the tiny model as the served base."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CLINSERVE_")}
    env |= {"CLINSERVE_MODEL__PATH": str(base), "CLINSERVE_MODEL__NAME": "tiny"}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "adapters", *args, "--data-dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )


def one_line_error(result: subprocess.CompletedProcess[str], code: int, words: str) -> None:
    assert result.returncode == code, result.stderr
    assert words in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_publish_promote_canary_rollback_list(
    tmp_path: Path, tiny_base: Path, lora_dir: Path
) -> None:
    published = adapters(tmp_path, tiny_base, "publish", str(lora_dir), "--name", "med")
    assert published.returncode == 0, published.stderr
    first = json.loads(published.stdout)
    assert (first["name"], first["version"], first["state"]) == ("med", 1, "staged")
    assert (tmp_path / "d" / "adapters" / "med" / "1" / "adapter_model.safetensors").is_file()

    promoted = json.loads(adapters(tmp_path, tiny_base, "promote", "med", "1").stdout)
    assert promoted["state"] == "active"
    second = adapters(tmp_path, tiny_base, "publish", str(lora_dir), "--name", "med",
                      "--canary", "10")  # fmt: skip
    assert json.loads(second.stdout)["canary_percent"] == 10
    assert json.loads(adapters(tmp_path, tiny_base, "promote", "med", "2").stdout)["version"] == 2
    back = json.loads(adapters(tmp_path, tiny_base, "rollback", "med").stdout)
    assert (back["version"], back["state"]) == (1, "active")

    listed = json.loads(adapters(tmp_path, tiny_base, "list", "--json").stdout)
    assert [(v["version"], v["state"]) for v in listed] == [(1, "active"), (2, "retired")]
    table = adapters(tmp_path, tiny_base, "list").stdout
    assert "med" in table and "active" in table and "retired" in table


def test_the_served_bases_fingerprint_is_checked(tmp_path: Path, tiny_base: Path) -> None:
    other_base = tmp_path / "other-base"
    build_tiny_model(other_base, seed=1)
    adapter = make_lora(other_base, tmp_path / "trained-elsewhere")
    AdapterManifest(
        base_model="tiny", base_model_sha256=fingerprint(other_base), rank=8,
        target_modules=["q_proj", "v_proj"],
    ).write(adapter)  # fmt: skip
    refused = adapters(tmp_path, tiny_base, "publish", str(adapter), "--name", "med")
    one_line_error(refused, 2, "trained on other weights than the served 'tiny'")
    assert json.loads(adapters(tmp_path, tiny_base, "list", "--json").stdout) == []


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["publish", "/nonexistent", "--name", "med"], "not a folder"),
        (["publish", "{lora}", "--name", "../med"], "invalid adapter name"),
        (["publish", "{lora}", "--name", "med", "--canary", "10"], "no active version"),
        (["publish", "{lora}", "--name", "med", "--eval-gate", "acc>=0.5"], "reports no 'acc'"),
        (["publish", "{lora}", "--name", "med", "--eval-gate", "acc"], "write METRIC>=VALUE"),
        (["promote", "med", "3"], "no adapter med@3"),
        (["rollback", "med"], "no active version"),
    ],
)
def test_refusals_are_one_line_and_exit_2(
    tmp_path: Path, tiny_base: Path, lora_dir: Path, args: list[str], words: str
) -> None:
    args = [str(lora_dir) if arg == "{lora}" else arg for arg in args]
    one_line_error(adapters(tmp_path, tiny_base, *args), 2, words)
    assert not (tmp_path / "d" / "adapters" / "med").exists() or not any(
        (tmp_path / "d" / "adapters" / "med").iterdir()
    )
