"""Load the team's bilingual lexicons (YAML files in `perturbation/lexicons/`), once.

Lexicons are data, not code: clinicians and linguists can review and extend them without
reading Python, and every detector gets the same parsed, validated copy. Files live inside
the package so an installed wheel or the gateway image carries them.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

LEXICON_DIR = Path(__file__).with_name("lexicons")


class LexiconError(ValueError):
    """A lexicon file is missing or malformed: a packaging bug, reported with its path."""


@cache
def load(name: str) -> Any:
    """The parsed content of `lexicons/<name>.yaml` (cached; treat it as read-only)."""
    path = LEXICON_DIR / f"{name}.yaml"
    if not path.is_file():
        raise LexiconError(f"lexicon {name!r} not found at {path}")
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except yaml.YAMLError as exc:
        raise LexiconError(f"lexicon {path} is not valid YAML: {exc}") from exc
