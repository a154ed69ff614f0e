"""A model folder's fingerprint follows its weights and config, not its other files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.adapter_fixtures import tiny_base
from weights.fingerprint import fingerprint

__all__ = ["tiny_base"]


def test_same_weights_same_fingerprint_other_weights_other(tiny_base: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_base, copy)
    (copy / "README.md").write_text("notes do not count")
    assert fingerprint(copy) == fingerprint(tiny_base)
    config = copy / "config.json"
    config.write_text(
        config.read_text().replace('"num_hidden_layers": 2', '"num_hidden_layers": 3')
    )
    assert fingerprint(copy) != fingerprint(tiny_base)


def test_a_folder_without_weights_has_no_fingerprint(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="no model weights"):
        fingerprint(tmp_path)
