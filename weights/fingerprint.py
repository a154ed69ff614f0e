"""A model folder's fingerprint: which exact weights an adapter was trained on.

An adapter trained on one base and loaded onto another still loads (the shapes match across
fine-tunes of one architecture) and silently answers worse, so the adapter manifest records
the base's fingerprint and publishing compares it with the model the workers serve. It is the
SHA-256 over each weights and config file's relative path and SHA-256, in path order: renaming
or re-sharding the same weights changes it, which errs on the side of refusing.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

FINGERPRINTED = ("config.json", "*.safetensors", "*.bin", "*.gguf")
_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(model_dir: Path) -> str:
    """The fingerprint of the weights in `model_dir` (FileNotFoundError if it holds none)."""
    files = sorted({path for pattern in FINGERPRINTED for path in model_dir.glob(pattern)})
    if not any(path.name != "config.json" for path in files):
        raise FileNotFoundError(f"no model weights in {model_dir}")
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(model_dir).as_posix()}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()
