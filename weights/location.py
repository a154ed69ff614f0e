"""Where models live on disk, and how a model setting turns into something vLLM can load.

Kept free of heavy imports (only platformdirs, imported lazily) because both `clinserve model
path` and the gateway's start-up call into it and must stay instant.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from weights.errors import ModelNotFound
from weights.packaged import PACKAGED_MODEL

DATA_DIR_ENV = "CLINSERVE_DATA_DIR"
"""Environment variable that overrides the per-user data directory (CI, containers, tests)."""

COMPLETE_MARKER = ".clinserve-complete"
"""Written last inside a converted model folder; a folder without it is not a model yet."""

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def default_data_dir() -> Path:
    """`$CLINSERVE_DATA_DIR` if set, else the platform's per-user data dir for clinserve.

    On Linux that is `~/.local/share/clinserve`; the user data dir (not a cache dir) because
    the converted weights are expensive to rebuild and must not be swept by cache cleaners.
    """
    override = os.environ.get(DATA_DIR_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("clinserve", appauthor=False))


def models_dir(data_dir: Path) -> Path:
    """Parent of every converted model folder."""
    return data_dir / "models"


def downloads_dir(data_dir: Path) -> Path:
    """Downloaded part archives and the joined GGUF file."""
    return data_dir / "downloads"


def packaged_model_dir(data_dir: Path | None = None) -> Path:
    """Folder the packaged default model is converted into (it may not exist yet)."""
    return models_dir(default_data_dir() if data_dir is None else data_dir) / (
        PACKAGED_MODEL.served_name
    )


def is_complete(model_dir: Path) -> bool:
    """True once a pull has finished converting into `model_dir` (the marker is written last)."""
    return (model_dir / COMPLETE_MARKER).is_file()


def looks_like_hub_id(setting: str) -> bool:
    """`org/name` with no path syntax: what vLLM would fetch from a model hub."""
    return bool(_HUB_ID.match(setting)) and not setting.startswith((".", "~"))


def resolve_model(setting: str | None, data_dir: Path | None = None) -> str:
    """Turn the model setting into what vLLM's `--model` gets.

    - None (or empty): the packaged default model, which must have been pulled.
    - An existing path: must be a folder with config.json; returned absolute.
    - `org/name` that is not a local path: a hub id, passed through for vLLM to fetch where a
      hub is reachable.
    Anything else is an error now rather than a confusing vLLM start-up failure later.
    """
    if setting is None or not setting.strip():
        model_dir = packaged_model_dir(data_dir)
        if not is_complete(model_dir):
            raise ModelNotFound(
                f"the packaged model is not pulled yet (expected in {model_dir}); "
                "run `clinserve model pull` first, or set the model to a local path",
                model_dir,
            )
        return str(model_dir)
    setting = setting.strip()
    path = Path(setting).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelNotFound(f"model path {path} is a file; expected a model folder", path)
        if not (path / "config.json").is_file():
            raise ModelNotFound(
                f"model folder {path} has no config.json (not a transformers model folder)", path
            )
        return str(path.resolve())
    if looks_like_hub_id(setting):
        return setting
    raise ModelNotFound(f"model path {path} does not exist", path)
