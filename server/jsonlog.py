"""Structured JSON logs with the request id, and nothing from a request's content.

One JSON object per line: `ts`, `level`, `logger`, `message`, `request_id` (set per request by
the middleware through `request_id_var`), plus `extra={...}` fields whose names are on an
allow-list of structured, content-free fields. An exception is logged as its type and the
file:line of each frame, not its message: exception messages routinely quote the values that
caused them, which here would be patient text.
"""

from __future__ import annotations

import json
import logging
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

request_id_var: ContextVar[str | None] = ContextVar("clinserve_request_id", default=None)

SAFE_EXTRAS = frozenset(
    {"route", "status", "latency_ms", "model", "worker", "tenant", "key_id", "adapter", "event"}
)
"""`extra` field names that may appear in a log line; anything else is dropped."""

_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None)))


class JsonFormatter(logging.Formatter):
    def __init__(self, redact_exceptions: bool = True) -> None:
        super().__init__()
        self.redact_exceptions = redact_exceptions

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            line["request_id"] = request_id
        for name, value in vars(record).items():
            if name in SAFE_EXTRAS and name not in _RECORD_FIELDS:
                line[name] = value
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            line["exception"] = (
                redacted(error)
                if self.redact_exceptions
                else "".join(traceback.format_exception(error)).rstrip()
            )
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`LEVEL logger: message` for a developer's terminal, with exceptions redacted as in the
    JSON lines: a text log is no safer a place for patient text."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def formatException(self, ei: Any) -> str:
        error = ei[1]
        return redacted(error) if error is not None else ""

    def formatStack(self, stack_info: str) -> str:
        return stack_info  # frames only: no values


def redacted(error: BaseException) -> str:
    """The exception's type and the file:line of each frame, innermost first; no message."""
    frames = traceback.extract_tb(error.__traceback__)
    where = " < ".join(f"{frame.filename}:{frame.lineno}" for frame in reversed(frames))
    return f"{type(error).__module__}.{type(error).__qualname__} at {where}"


LogFormat = Literal["json", "text"]
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
QUIET_LOGGERS = ("httpx", "httpcore")
"""Client libraries that log every request URL at INFO: the CDS Hooks service's FHIR reads
carry the patient's id in theirs (`Condition?patient=...`), so only their warnings go out."""


def configure_logging(level: str, fmt: LogFormat = "json") -> None:
    """Root and uvicorn loggers to stderr in `fmt`; idempotent (replaces our own handler)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
