"""Start a real `clinserve serve` process against a fake worker, for end-to-end tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
_KEY = re.compile(r"\bcs-[0-9a-f]{12}-[A-Za-z0-9_-]{32,128}\b")


def start_serve(worker_url: str, port: int, data_dir: Path, **env: str) -> subprocess.Popen[bytes]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--worker", worker_url,
         "--port", str(port), "--data-dir", str(data_dir)],
        cwd=data_dir, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


def read_until_started(stdout: IO[bytes]) -> tuple[str | None, list[str]]:
    """Read output up to the "Gateway on" line: the bootstrap key if one was printed."""
    lines: list[str] = []
    for raw in stdout:
        line = raw.decode(errors="replace")
        lines.append(line)
        if line.startswith("Gateway on "):
            break
    found = [match.group(0) for line in lines for match in _KEY.finditer(line)]
    assert len(found) <= 1, lines
    return (found[0] if found else None), lines
