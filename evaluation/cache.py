"""A resumable on-disk cache of endpoint responses, so a stopped run picks up where it was.

One JSONL line per completed request, `{"key": sha256, "response": {...}}`, appended and
flushed as each answer arrives: a run killed at item 900 of 1000 re-sends only the last 100.
A kill in the middle of a write leaves a torn last line; it is dropped on open and cut from
the file, so the lines appended after it still parse. Failed requests are never stored, so a
resumed run retries them.

The key covers everything that decides the answer: the endpoint's base URL, the model and the
request body, as canonical JSON (sorted keys, no spaces), so the same request hits the same
line whatever order its dict was built in, and any change to the prompt or the sampling
settings misses.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any


class ResponseCache:
    """Responses by request key, loaded from `path` and appended to it; `None`: no file,
    every lookup misses and nothing is kept."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._responses: dict[str, dict[str, Any]] = {}
        self._file: IO[str] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._load(path)
            self._file = path.open("a", encoding="utf-8")

    @staticmethod
    def key(base_url: str, model: str, body: Mapping[str, Any]) -> str:
        """sha256 of the canonical request; a trailing slash on `base_url` changes nothing."""
        request = {"base_url": base_url.rstrip("/"), "model": model, "body": body}
        canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def get(self, key: str) -> dict[str, Any] | None:
        return self._responses.get(key)

    def put(self, key: str, response: dict[str, Any]) -> None:
        """Keep `response` and, with a file, append it as one flushed line."""
        if self.path is None:
            return
        if self._file is None:
            raise ValueError(f"{self.path}: the cache is closed")
        line = json.dumps({"key": key, "response": response}, ensure_ascii=False)
        self._file.write(line + "\n")
        self._file.flush()
        self._responses[key] = response

    def __len__(self) -> int:
        return len(self._responses)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _load(self, path: Path) -> None:
        """Read every complete line; cut a torn last line (no newline) from the file.

        A complete line that does not parse is not a torn write but a damaged file: refuse
        it by name rather than silently re-sending (and paying for) part of a run.
        """
        if not path.exists():
            return
        data = path.read_bytes()
        complete = data.rfind(b"\n") + 1
        if complete < len(data):
            with path.open("r+b") as file:
                file.truncate(complete)
        for number, raw in enumerate(data[:complete].split(b"\n"), start=1):
            if not raw.strip():
                continue
            entry = _parse_line(raw)
            if entry is None:
                raise ValueError(
                    f"{path}:{number}: not a cache line; delete the file to start over"
                )
            key, response = entry
            self._responses[key] = response


def _parse_line(raw: bytes) -> tuple[str, dict[str, Any]] | None:
    try:
        entry = json.loads(raw)
    except ValueError:  # also bytes that are not UTF-8
        return None
    if not isinstance(entry, dict):
        return None
    key, response = entry.get("key"), entry.get("response")
    if isinstance(key, str) and isinstance(response, dict):
        return key, response
    return None
