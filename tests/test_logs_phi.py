"""Logs are JSON with the request id, and patient identifiers never reach a log line, a metric
label or an audit row, whichever route or failure they travel through."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator

import httpx
import pytest

from server.jsonlog import JsonFormatter, configure_logging, request_id_var
from tests.auth_fixtures import AuthedGateway, start_authed_gateway
from tests.conftest import FakeWorker

__all__ = ["start_authed_gateway"]

CANARIES = (
    "Zebulon Quarrington",  # a name
    "+44 7700 900461",  # a phone number
    "MRN-88412093",  # a medical record number
    "AB123456C",  # a UK National Insurance number
    "110101199003078515",  # a Chinese resident identity number
)
MESSAGE = (
    f"I am {CANARIES[0]}, call me on {CANARIES[1]}, hospital number {CANARIES[2]}, NI "
    f"{CANARIES[3]}, ID {CANARIES[4]}. Crushing chest pain and I cant breathe."
)


class Collect(logging.Handler):
    """Every record any logger emits during the test, formatted as production formats it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def logs() -> Iterator[Collect]:
    handler = Collect()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def test_canary_identifiers_appear_in_no_log_line_metric_or_audit_row(
    start_authed_gateway: Callable[..., AuthedGateway], worker: FakeWorker, logs: Collect
) -> None:
    gateway = start_authed_gateway()
    key = gateway.key("chat,intake,embeddings,feedback")
    admin = gateway.key("admin")
    auth = {"Authorization": f"Bearer {key}"}
    messages = [{"role": "user", "content": MESSAGE}]
    url = gateway.url

    answer = httpx.post(f"{url}/v1/chat/completions", headers=auth, timeout=30,
                        json={"model": "fake-model", "messages": messages})  # fmt: skip
    assert answer.status_code == 200
    with httpx.stream(
        "POST",
        f"{url}/v1/chat/completions",
        headers=auth,
        timeout=30,
        json={"model": "fake-model", "messages": messages, "stream": True},
    ) as s:
        assert s.status_code == 200 and list(s.iter_lines())  # fmt: skip
    intake = httpx.post(f"{url}/v1/clinical/intake", json={"text": MESSAGE}, headers=auth)
    assert intake.status_code == 200 and intake.json()["red_flags"]
    feedback = {"completion_id": answer.json()["id"], "rating": 1, "comment": MESSAGE}
    assert httpx.post(f"{url}/v1/clinical/feedback", json=feedback, headers=auth).status_code == 201
    # Failure paths: a worker error, a malformed body, an invalid field, a bad end-user header.
    worker.behaviour.fail_with = 500
    failed = httpx.post(f"{url}/v1/chat/completions", headers=auth, timeout=30,
                        json={"model": "fake-model", "messages": messages})  # fmt: skip
    assert failed.status_code >= 500
    worker.behaviour.fail_with = None
    broken = httpx.post(f"{url}/v1/chat/completions", headers=auth, content=MESSAGE.encode())
    assert broken.status_code == 400
    bad_n = {"model": "fake-model", "messages": messages, "n": MESSAGE}
    invalid = httpx.post(f"{url}/v1/chat/completions", headers=auth, json=bad_n)
    assert invalid.status_code == 400
    bad_user = httpx.get(f"{url}/v1/models", headers={**auth, "X-OpenWebUI-User-Id": MESSAGE})
    assert bad_user.status_code == 400

    assert gateway.gateway.audit.flush(10)
    rows = httpx.get(f"{url}/v1/admin/audit", params={"limit": 500},
                     headers={"Authorization": f"Bearer {admin}"}).json()["data"]  # fmt: skip
    metrics = httpx.get(f"{url}/metrics").text
    log_text = "\n".join(logs.lines)
    assert len(rows) >= 7 and logs.lines, "the test exercised the audit and the logs"
    for canary in CANARIES:
        assert canary not in log_text, canary
        assert canary not in metrics, canary
        assert canary not in json.dumps(rows, ensure_ascii=False), canary


def test_a_log_line_is_one_json_object_with_the_request_id() -> None:
    formatter = JsonFormatter()
    record = logging.LogRecord(
        "server.x", logging.WARNING, __file__, 1, "worker %s slow", ("w1",), None
    )
    record.route, record.messages = "/v1/chat/completions", MESSAGE  # one allowed, one not
    token = request_id_var.set("req-42")
    try:
        line = json.loads(formatter.format(record))
    finally:
        request_id_var.reset(token)
    assert line["message"] == "worker w1 slow" and line["level"] == "warning"
    assert line["request_id"] == "req-42" and line["route"] == "/v1/chat/completions"
    assert "messages" not in line


def test_exceptions_are_logged_without_their_message() -> None:
    try:
        raise ValueError(f"bad value {CANARIES[0]}")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = json.loads(JsonFormatter().format(record))
    assert "builtins.ValueError at" in line["exception"] and CANARIES[0] not in line["exception"]
    assert CANARIES[0] in JsonFormatter(redact_exceptions=False).format(record)


def test_configure_logging_is_idempotent() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("warning")
        configure_logging("warning")
        assert len(root.handlers) == 1 and isinstance(root.handlers[0].formatter, JsonFormatter)
        assert logging.getLogger("uvicorn.error").propagate
    finally:
        root.handlers, root.level = saved[0], saved[1]
