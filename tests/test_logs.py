"""The log format on its own: one JSON object per line, the request id, only allow-listed
extras, exceptions without their message, and the configured level, for our loggers and
uvicorn's alike. (tests/test_logs_phi.py checks a whole gateway's logs for patient data.)"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from server.jsonlog import (
    QUIET_LOGGERS,
    UVICORN_LOGGERS,
    JsonFormatter,
    TextFormatter,
    configure_logging,
    request_id_var,
)

PATIENT = "John Smith"


def record(message: str = "hello", level: int = logging.INFO, **extra: Any) -> logging.LogRecord:
    made = logging.LogRecord("server.test", level, __file__, 7, message, (), None)
    made.__dict__.update(extra)
    return made


def failing_record(error: BaseException) -> logging.LogRecord:
    """A record carrying `error` as a logger's `exc_info=True` inside `except` would."""
    try:
        raise error
    except BaseException:
        return logging.LogRecord("server.test", logging.ERROR, __file__, 7, "failed", (),
                                 sys.exc_info())  # fmt: skip


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """`configure_logging` rewires process-wide loggers: put them back for the next test."""
    names = ("", *UVICORN_LOGGERS, *QUIET_LOGGERS)
    saved = {
        name: (logging.getLogger(name).handlers[:], logging.getLogger(name).level,
               logging.getLogger(name).propagate)
        for name in names
    }  # fmt: skip
    try:
        yield
    finally:
        for name, (handlers, level, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers, logger.level, logger.propagate = handlers, level, propagate


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_a_multi_line_message_is_still_one_json_line_with_a_utc_timestamp() -> None:
    line = JsonFormatter().format(record("first\nsecond"))
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "first\nsecond"
    assert parsed["level"] == "info" and parsed["logger"] == "server.test"
    assert datetime.fromisoformat(parsed["ts"]).utcoffset() == UTC.utcoffset(None)


def test_the_request_id_appears_only_while_the_context_variable_is_set() -> None:
    formatter = JsonFormatter()
    assert "request_id" not in json.loads(formatter.format(record()))
    token = request_id_var.set("req-7")
    try:
        assert json.loads(formatter.format(record()))["request_id"] == "req-7"
    finally:
        request_id_var.reset(token)


def test_only_allow_listed_extras_are_emitted() -> None:
    line = json.loads(
        JsonFormatter().format(
            record(status=502, latency_ms=12.5, worker="w1", messages=PATIENT, prompt=PATIENT)
        )
    )
    assert line["status"] == 502 and line["latency_ms"] == 12.5 and line["worker"] == "w1"
    assert "messages" not in line and "prompt" not in line and PATIENT not in json.dumps(line)


def test_an_exception_is_its_type_and_frames_without_its_message() -> None:
    line = json.loads(JsonFormatter().format(failing_record(ValueError(f"patient {PATIENT}"))))
    assert line["exception"].startswith("builtins.ValueError at ")
    assert f"{__file__}:" in line["exception"]
    assert PATIENT not in json.dumps(line)


def test_a_chained_exception_leaks_neither_message() -> None:
    try:
        try:
            raise KeyError(PATIENT)
        except KeyError as cause:
            raise RuntimeError(f"lookup of {PATIENT} failed") from cause
    except RuntimeError as error:
        chained = error
    line = JsonFormatter().format(failing_record(chained))
    assert "RuntimeError" in line and PATIENT not in line


def test_unredacted_exceptions_are_the_full_traceback_for_local_debugging() -> None:
    line = json.loads(
        JsonFormatter(redact_exceptions=False).format(failing_record(ValueError(PATIENT)))
    )
    assert (
        line["exception"].startswith("Traceback") and f"ValueError: {PATIENT}" in line["exception"]
    )


@pytest.mark.usefixtures("restore_logging")
def test_configure_logging_filters_by_level_and_routes_uvicorn_through_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("warning")
    logging.getLogger("server.test").info("dropped")
    logging.getLogger("server.test").warning("kept", extra={"event": "probe"})
    logging.getLogger("uvicorn.error").warning("from uvicorn")
    lines = json_lines(capsys.readouterr().err)
    assert [(line["logger"], line["message"]) for line in lines] == [
        ("server.test", "kept"),
        ("uvicorn.error", "from uvicorn"),
    ]
    assert lines[0]["event"] == "probe"


@pytest.mark.usefixtures("restore_logging")
def test_the_text_format_is_for_humans(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "text")
    configure_logging("info", "text")  # idempotent: still one line per record
    logging.getLogger("server.test").info("plain")
    assert capsys.readouterr().err == "INFO server.test: plain\n"


@pytest.mark.usefixtures("restore_logging")
def test_http_client_request_urls_stay_out_of_the_log(capsys: pytest.CaptureFixture[str]) -> None:
    """httpx logs each request's URL at INFO; a FHIR read's URL names the patient."""
    configure_logging("info")
    logging.getLogger("httpx").info(
        'HTTP Request: GET https://emr.test/Condition?patient=p-7 "200"'
    )
    logging.getLogger("httpx").warning("connection pool full")
    lines = json_lines(capsys.readouterr().err)
    assert [line["message"] for line in lines] == ["connection pool full"]


def test_the_text_format_redacts_exceptions_too() -> None:
    text = TextFormatter().format(failing_record(ValueError(f"patient {PATIENT}")))
    assert text.startswith("ERROR server.test: failed\nbuiltins.ValueError at ")
    assert PATIENT not in text
