"""The background audit writer: batches, flushes, survives a database outage, isolates a
record the database refuses, and bounds its memory."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from server.audit.chain import AuditRecord
from server.audit.store import AuditStore
from server.audit.writer import AuditWriter
from server.db.audit_models import AuditEvent
from tests.db_fixtures import database_url, engine, migrated, sessions
from tests.test_audit_store import KEY, record

__all__ = ["database_url", "engine", "migrated", "sessions"]


class FlakyStore(AuditStore):
    """A real store that fails on cue: `outages` transient failures, and any batch holding
    a record whose request id is `poison` refused as bad data."""

    def __init__(self, sessions: sessionmaker[Session], outages: int = 0) -> None:
        super().__init__(sessions, KEY)
        self.outages = outages
        self.batches: list[int] = []
        self.poison: str | None = None

    def append(self, records: Sequence[AuditRecord]) -> None:
        if self.outages:
            self.outages -= 1
            raise OperationalError("INSERT", {}, Exception("connection refused"))
        if any(r.request_id == self.poison and r.model is not None for r in records):
            raise DataError("INSERT", {}, Exception("value too long"))
        self.batches.append(len(records))
        super().append(records)


def rows(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def test_records_are_written_in_batches_and_flush_waits_for_them(
    sessions: sessionmaker[Session],
) -> None:
    store = FlakyStore(sessions)
    writer = AuditWriter(store, batch_size=50, max_wait_s=0.2)
    writer.start()
    for n in range(1, 121):
        writer.submit(record(n))
    assert writer.flush(10)
    assert rows(sessions) == 120 and writer.written == 120 and writer.pending == 0
    assert max(store.batches) == 50 and len(store.batches) <= 5
    assert writer.close(5)
    assert store.verify().intact


def test_an_outage_loses_nothing(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    writer = AuditWriter(FlakyStore(sessions, outages=3), max_wait_s=0.01, max_backoff_s=0.05)
    writer.start()
    with caplog.at_level(logging.WARNING, logger="server.audit.writer"):
        for n in range(1, 11):
            writer.submit(record(n, prompt_text="Jane Roe 555-0199"))
        assert writer.close(10)
    assert rows(sessions) == 10 and writer.failures == 3
    assert "retrying" in caplog.text and "Jane Roe" not in caplog.text


def test_a_record_the_database_refuses_is_kept_stripped(sessions: sessionmaker[Session]) -> None:
    store = FlakyStore(sessions)
    store.poison = "req-3"
    writer = AuditWriter(store, max_wait_s=0.01)
    for n in range(1, 6):
        writer.submit(record(n))
    writer.start()
    assert writer.close(10)
    with sessions() as session:
        kept = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
        assert [row.request_id for row in kept] == [f"req-{n}" for n in range(1, 6)]
        stripped = next(row for row in kept if row.request_id == "req-3")
        assert stripped.model is None and stripped.status == 200
    assert store.verify().intact


def test_a_record_that_cannot_be_serialised_does_not_stop_the_writer(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    writer = AuditWriter(AuditStore(sessions, KEY), max_wait_s=0.01)
    writer.start()
    with caplog.at_level(logging.ERROR, logger="server.audit.writer"):
        writer.submit(record(1, citations=[object()]))  # a caller bug, not a database error
        writer.submit(record(2))
        assert writer.flush(10)
    assert writer.written == 2 and rows(sessions) == 2
    assert "TypeError" in caplog.text and "prompt 1" not in caplog.text
    writer.submit(record(3))
    assert writer.close(10) and rows(sessions) == 3


def test_a_full_queue_drops_and_counts(sessions: sessionmaker[Session]) -> None:
    writer = AuditWriter(AuditStore(sessions, KEY), max_pending=3)  # not started: nothing drains
    for n in range(1, 6):
        writer.submit(record(n))
    assert (writer.submitted, writer.rejected, writer.pending) == (3, 2, 3)
    writer.start()
    assert writer.close(10)
    assert rows(sessions) == 3
