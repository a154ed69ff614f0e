"""weights.location: data dir override, packaged model dir, and model setting resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from weights.errors import ModelNotFound
from weights.location import (
    COMPLETE_MARKER,
    default_data_dir,
    packaged_model_dir,
    resolve_model,
)


def test_data_dir_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLINSERVE_DATA_DIR", str(tmp_path))
    assert default_data_dir() == tmp_path
    assert packaged_model_dir() == tmp_path / "models" / "qwen2.5-coder-0.5b-instruct"


def test_default_data_dir_is_per_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLINSERVE_DATA_DIR", raising=False)
    assert default_data_dir().name == "clinserve"


def test_unpulled_default_tells_the_user_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="clinserve model pull"):
        resolve_model(None, tmp_path)


def test_pulled_default_resolves(tmp_path: Path) -> None:
    model_dir = packaged_model_dir(tmp_path)
    model_dir.mkdir(parents=True)
    (model_dir / COMPLETE_MARKER).write_text("{}")
    assert resolve_model(None, tmp_path) == str(model_dir)
    assert resolve_model("  ", tmp_path) == str(model_dir)


def test_local_folder_needs_config_json(tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    with pytest.raises(ModelNotFound, match="no config.json"):
        resolve_model(str(folder), tmp_path)
    (folder / "config.json").write_text("{}")
    assert resolve_model(str(folder), tmp_path) == str(folder.resolve())


def test_file_and_missing_paths_are_errors(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(ModelNotFound, match="is a file"):
        resolve_model(str(tmp_path / "weights.bin"), tmp_path)
    with pytest.raises(ModelNotFound, match="does not exist"):
        resolve_model(str(tmp_path / "nope"), tmp_path)
    with pytest.raises(ModelNotFound, match="does not exist"):
        resolve_model("./org/name", tmp_path)


def test_hub_id_passes_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_model("BAAI/bge-m3", tmp_path) == "BAAI/bge-m3"
    assert resolve_model("Qwen/Qwen2.5-7B-Instruct", tmp_path) == "Qwen/Qwen2.5-7B-Instruct"
