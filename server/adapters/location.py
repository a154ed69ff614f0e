"""Adapter locations are relative to the adapters root and must stay inside it.

The registry stores `NAME/VERSION`; whatever reads a location back (publishing, the workers'
loader) resolves it here, so an edited row such as `../../etc` cannot point a worker at a
folder outside the root.
"""

from __future__ import annotations

from pathlib import Path


class OutsideRoot(ValueError):
    """A location that resolves outside the adapters root."""


def resolve_location(root: Path, location: str) -> Path:
    """The absolute folder for `location` under `root`, or `OutsideRoot`."""
    base = root.resolve()
    candidate = Path(location)
    if candidate.is_absolute() or not location.strip():
        raise OutsideRoot(f"adapter location {location!r} must be relative to the adapters root")
    resolved = (base / candidate).resolve()
    if resolved == base or not resolved.is_relative_to(base):
        raise OutsideRoot(f"adapter location {location!r} leaves the adapters root {base}")
    return resolved
