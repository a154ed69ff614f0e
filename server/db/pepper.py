"""The server-side secret ("pepper") that API-key hashes are keyed with.

Keys are random enough that a fast hash would do, but keying the hash (HMAC-SHA256) means a
leaked database alone is useless: checking a guess needs the pepper, which lives outside the
database. Where it comes from, first match wins:

1. the `key_pepper` setting (`CLINSERVE_KEY_PEPPER`, at least 32 characters);
2. the `key_pepper_file` setting: that file must exist (a missing mounted secret is a
   deployment error, and a fresh pepper would silently invalidate every key);
3. `<data_dir>/secrets/key_pepper`, created on first use with 32 random bytes, mode 0600 in
   a 0700 folder.

Losing the pepper invalidates every key, so back it up with the database.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from server.settings import Settings

PEPPER_BYTES = 32
MIN_PEPPER_BYTES = 32


class PepperError(RuntimeError):
    """The pepper cannot be read or created; the message says which file and why."""


def default_pepper_file(data_dir: Path) -> Path:
    return data_dir / "secrets" / "key_pepper"


def load_pepper(
    data_dir: Path, pepper: str | None = None, pepper_file: Path | None = None
) -> bytes:
    """The pepper per the precedence above, creating the default file when needed."""
    if pepper is not None:
        value = pepper.encode("utf-8")
        if len(value) < MIN_PEPPER_BYTES:
            raise PepperError(f"key_pepper must be at least {MIN_PEPPER_BYTES} bytes long")
        return value
    if pepper_file is not None:
        return _read(pepper_file)
    path = default_pepper_file(data_dir)
    if not path.exists():
        _create(path)
    return _read(path)


def deployment_pepper(settings: Settings) -> bytes:
    """The pepper the deployment's settings name: what the gateway and every CLI use."""
    secret = settings.key_pepper.get_secret_value() if settings.key_pepper else None
    return load_pepper(settings.data_dir, secret, settings.key_pepper_file)


def _read(path: Path) -> bytes:
    try:
        value = path.read_bytes()
    except OSError as exc:
        raise PepperError(f"cannot read the key pepper {path}: {exc.strerror or exc}") from None
    if len(value) < MIN_PEPPER_BYTES:
        raise PepperError(f"the key pepper {path} holds fewer than {MIN_PEPPER_BYTES} bytes")
    return value


def _create(path: Path) -> None:
    """Write a new pepper atomically; if another process wins the race, keep theirs.

    The bytes go to a private temporary file first (mkstemp creates it 0600) and are then
    hard-linked into place, which fails instead of overwriting: readers never see a partial
    file and two concurrent first runs agree on one pepper.
    """
    folder = path.parent
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=".key_pepper.")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(PEPPER_BYTES))
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o600)
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    except OSError as exc:
        raise PepperError(f"cannot create the key pepper {path}: {exc.strerror or exc}") from None
