"""The index manifest: what built an index, from what, and the check made before using it.

An index is only meaningful with the embedder that built it: vectors from another model (or
the same model with other instructions) live in another space, and searching them returns
confident nonsense. So the manifest records the embedder's identity and loading refuses a
mismatch with a message that says what to do, instead of answering badly.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from retrieval.documents import SourceDocument

FORMAT_VERSION = 1
FILE = "manifest.json"
_IDENTITY_KEYS = ("fingerprint", "dimension", "query_instruction", "passage_instruction")


class IndexUnusable(Exception):
    """An index folder that cannot be used: missing, damaged, another format or embedder."""


@dataclass(frozen=True)
class Manifest:
    embedder: dict[str, Any]
    dense: dict[str, Any]
    chunking: dict[str, Any]
    corpus_sha256: str
    documents: int
    chunks: int
    duplicates_dropped: int
    languages: dict[str, int]
    built_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    format_version: int = FORMAT_VERSION
    clinserve_version: str = field(default_factory=lambda: _version())

    def save(self, folder: Path) -> None:
        (folder / FILE).write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> Manifest:
        path = folder / FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise IndexUnusable(f"{folder} is not an index (no {FILE})") from None
        except (OSError, ValueError) as exc:
            raise IndexUnusable(f"{path} cannot be read: {exc}") from exc
        if data.get("format_version") != FORMAT_VERSION:
            raise IndexUnusable(
                f"{folder} has index format {data.get('format_version')!r}; this clinserve "
                f"reads format {FORMAT_VERSION}: rebuild it with `clinserve index build`"
            )
        try:
            return cls(**data)
        except TypeError as exc:
            raise IndexUnusable(f"{path} is damaged: {exc}") from exc

    def check_embedder(self, identity: dict[str, Any], folder: Path) -> None:
        built = self.embedder
        if all(built.get(key) == identity.get(key) for key in _IDENTITY_KEYS):
            return
        raise IndexUnusable(
            f"the index in {folder} was built with embedder {built.get('name')!r} "
            f"({built.get('dimension')}-d, fingerprint {built.get('fingerprint')}); the "
            f"configured embedder is {identity.get('name')!r} ({identity.get('dimension')}-d, "
            f"fingerprint {identity.get('fingerprint')}). Rebuild the index with this embedder "
            f"(`clinserve index build`) or configure the one it was built with."
        )


def corpus_sha256(documents: Sequence[SourceDocument]) -> str:
    """A hash of the documents' content and metadata, independent of file order."""
    digest = hashlib.sha256()
    for doc in sorted(documents, key=lambda d: d.id):
        record = asdict(doc)
        record.pop("path", None)  # moving a file does not change the corpus
        digest.update(json.dumps(record, sort_keys=True, ensure_ascii=False).encode() + b"\n")
    return digest.hexdigest()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("clinserve")
    except PackageNotFoundError:
        return "unknown"
