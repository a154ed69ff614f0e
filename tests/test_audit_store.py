"""The audit chain on SQLite and PostgreSQL: append, tamper detection, retention, queries."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from server.audit.chain import CHAINED_COLUMNS, AuditRecord, chain_key, row_hash
from server.audit.store import AuditStore, EventFilter, UnknownTenant
from server.db.audit_models import AuditContent, AuditEvent
from server.db.database import make_engine, session_factory
from server.db.keys import KeyStore
from tests.db_fixtures import PEPPER, database_url, engine, migrated, sessions

__all__ = ["database_url", "engine", "migrated", "sessions"]

KEY = chain_key(PEPPER)
T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def record(n: int, tenant_id: int | None = None, **fields: object) -> AuditRecord:
    values: dict[str, object] = {
        "created_at": T0 + timedelta(seconds=n),
        "request_id": f"req-{n}",
        "route": "/v1/chat/completions",
        "status": 200,
        "latency_ms": 12.345 + n,
        "tenant_id": tenant_id,
        "completion_id": f"chatcmpl-{n}",
        "model": "m",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "prompt_sha256": "a" * 64,
        "response_sha256": "b" * 64,
        "citations": ["hypertension#2"],
        "intake_mode": "annotate",
        "intake_subcategories": ["formal.internet_slang"],
        "red_flags": ["cardiac_chest_pain"] if n % 2 else [],
        "prompt_text": f"prompt {n}",
        "response_text": f"answer {n}",
        **fields,
    }
    return AuditRecord(**values)  # type: ignore[arg-type]


def tenant(sessions: sessionmaker[Session], name: str) -> int:
    return KeyStore(sessions, PEPPER).create_tenant_if_missing(name)


@pytest.fixture
def store(sessions: sessionmaker[Session]) -> AuditStore:
    return AuditStore(sessions, KEY)


def filled(store: AuditStore, sessions: sessionmaker[Session], rows: int = 6) -> int:
    tenant_id = tenant(sessions, "st-marys")
    store.append([record(n, tenant_id) for n in range(1, rows // 2 + 1)])
    store.append([record(n, tenant_id) for n in range(rows // 2 + 1, rows + 1)])
    return tenant_id


def test_an_untouched_chain_verifies(store: AuditStore, sessions: sessionmaker[Session]) -> None:
    assert store.verify().intact and store.verify().rows == 0
    filled(store, sessions)
    verdict = store.verify()
    assert verdict.intact and verdict.rows == 6


def test_an_edited_row_is_found(store: AuditStore, sessions: sessionmaker[Session]) -> None:
    filled(store, sessions)
    with sessions.begin() as session:
        session.execute(update(AuditEvent).where(AuditEvent.seq == 3).values(status=500))
    verdict = store.verify()
    assert not verdict.intact and verdict.seq == 3 and "modified" in (verdict.problem or "")


def test_a_deleted_middle_row_is_found(store: AuditStore, sessions: sessionmaker[Session]) -> None:
    filled(store, sessions)
    with sessions.begin() as session:
        session.execute(delete(AuditEvent).where(AuditEvent.seq == 4))
    verdict = store.verify()
    assert not verdict.intact and verdict.seq == 4 and "deleted" in (verdict.problem or "")


def test_deleting_the_newest_rows_is_found(
    store: AuditStore, sessions: sessionmaker[Session]
) -> None:
    filled(store, sessions)
    with sessions.begin() as session:
        session.execute(delete(AuditEvent).where(AuditEvent.seq >= 5))
    verdict = store.verify()
    assert not verdict.intact and "newest rows deleted" in (verdict.problem or "")


def test_an_inserted_row_is_found_even_with_a_plausible_hash(
    store: AuditStore, sessions: sessionmaker[Session]
) -> None:
    """A forger without the server secret cannot produce a hash that verifies."""
    filled(store, sessions)
    with sessions() as session:
        last = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
        assert last is not None
        forged = {name: getattr(last, name) for name in CHAINED_COLUMNS}
    forged.update(seq=7, request_id="req-forged", prev_hash=last.row_hash)
    for key in (chain_key(b"x" * 32), KEY):
        with sessions.begin() as session:
            session.execute(delete(AuditEvent).where(AuditEvent.seq == 7))
            session.execute(
                insert(AuditEvent).values(**forged, row_hash=row_hash(key, last.row_hash, forged))
            )
        verdict = store.verify()
        assert not verdict.intact
        # Wrong key: the row itself fails. Right key (a leaked secret): the head still disagrees.
        assert verdict.seq == 7 or "newest" in (verdict.problem or "")


def test_a_forged_row_with_a_valid_hash_but_the_wrong_predecessor_is_found(
    store: AuditStore, sessions: sessionmaker[Session]
) -> None:
    """Even with the server secret, a row must name the hash of the row before it."""
    filled(store, sessions)
    with sessions() as session:
        rows = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
        forged = {name: getattr(rows[-1], name) for name in CHAINED_COLUMNS}
    forged.update(seq=7, request_id="req-forged", prev_hash=rows[3].row_hash)
    with sessions.begin() as session:
        session.execute(
            insert(AuditEvent).values(**forged, row_hash=row_hash(KEY, rows[3].row_hash, forged))
        )
    verdict = store.verify()
    assert not verdict.intact and verdict.seq == 7
    assert "does not follow" in (verdict.problem or "")


def test_a_row_slipped_into_the_middle_is_found(
    store: AuditStore, sessions: sessionmaker[Session]
) -> None:
    """Renumber rows 4.. up by one and insert a correctly keyed row at 4: the old row 4
    (now 5) still names row 3 as its predecessor."""
    filled(store, sessions)
    with sessions() as session:
        third = session.scalars(select(AuditEvent).where(AuditEvent.seq == 3)).one()
        forged = {name: getattr(third, name) for name in CHAINED_COLUMNS}
    forged.update(seq=4, request_id="req-forged", prev_hash=third.row_hash)
    with sessions.begin() as session:  # two steps: the unique seq holds after each
        session.execute(text("UPDATE audit_events SET seq = seq + 1000 WHERE seq >= 4"))
        session.execute(text("UPDATE audit_events SET seq = seq - 999 WHERE seq >= 1000"))
        session.execute(
            insert(AuditEvent).values(**forged, row_hash=row_hash(KEY, third.row_hash, forged))
        )
    verdict = store.verify()
    assert not verdict.intact and verdict.seq == 5 and verdict.rows == 4


def test_concurrent_writers_on_two_engines_keep_one_unbroken_chain(
    database_url: str, migrated: object
) -> None:
    del migrated
    engines = [make_engine(database_url) for _ in range(2)]
    try:
        stores = [AuditStore(session_factory(e), KEY) for e in engines]

        def write(store: AuditStore, offset: int) -> None:
            for batch in range(10):
                store.append([record(offset + batch * 5 + n) for n in range(5)])

        threads = [threading.Thread(target=write, args=(s, i * 1000)) for i, s in enumerate(stores)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        verdict = stores[0].verify()
        assert verdict.intact and verdict.rows == 100
    finally:
        for created in engines:
            created.dispose()


def test_texts_are_kept_only_for_tenants_that_retain_them_and_purge_keeps_the_chain(
    store: AuditStore, sessions: sessionmaker[Session]
) -> None:
    keeps, private = tenant(sessions, "keeps"), tenant(sessions, "private")
    store.set_retention("keeps", 30)
    store.append([record(1, keeps), record(2, private), record(3, None)])
    with sessions() as session:
        contents = session.scalars(select(AuditContent)).all()
        retained = session.scalars(
            select(AuditEvent.seq).where(AuditEvent.content_retained.is_(True))
        ).all()
    assert [(c.tenant_id, c.prompt_text, c.response_text) for c in contents] == [
        (keeps, "prompt 1", "answer 1")
    ]
    assert retained == [1]
    assert contents[0].expires_at == T0 + timedelta(seconds=1, days=30)

    later = AuditStore(sessions, KEY, clock=lambda: T0 + timedelta(days=31))
    assert later.purge() == 1
    assert later.verify().intact, "purging texts never touches the chain"

    store.append([record(4, keeps), record(5, keeps)])
    store.set_retention("keeps", 10)  # shortened: applies to texts kept under 30 days too
    assert AuditStore(sessions, KEY, clock=lambda: T0 + timedelta(days=9)).purge() == 0
    assert AuditStore(sessions, KEY, clock=lambda: T0 + timedelta(days=10, seconds=4)).purge() == 1
    store.set_retention("keeps", None)
    assert store.purge() == 1, "turning retention off drops what was kept"
    with pytest.raises(UnknownTenant):
        store.set_retention("nobody", 5)


def test_listing_is_per_tenant_filtered_and_paged(
    store: AuditStore, sessions: sessionmaker[Session]
) -> None:
    mine = filled(store, sessions)
    other = tenant(sessions, "other")
    store.append([record(99, other, status=429)])
    rows = store.list_events(mine, limit=4)
    assert [row["seq"] for row in rows] == [1, 2, 3, 4]
    assert all(row["tenant_id"] == mine for row in rows)
    assert "prompt_text" not in rows[0] and "prompt 1" not in str(rows)
    assert [r["seq"] for r in store.list_events(mine, after_seq=4)] == [5, 6]
    assert store.list_events(mine, EventFilter(status=429)) == []
    flagged = store.list_events(mine, EventFilter(has_red_flags=True))
    assert [r["seq"] for r in flagged] == [1, 3, 5]
    unflagged = store.list_events(mine, EventFilter(has_red_flags=False))
    assert [r["seq"] for r in unflagged] == [2, 4, 6]
    since = store.list_events(mine, EventFilter(since=T0 + timedelta(seconds=5)))
    assert [r["seq"] for r in since] == [5, 6]
    assert [r["seq"] for r in store.list_events(other)] == [7]


def test_export_pages_through_everything(
    store: AuditStore, sessions: sessionmaker[Session]
) -> None:
    filled(store, sessions)
    store.set_retention("st-marys", 30)
    store.append([record(7, tenant(sessions, "st-marys"))])
    lines = list(store.export("st-marys", with_content=True))
    assert [line["seq"] for line in lines] == list(range(1, 8))
    assert lines[-1]["content"] == {"prompt": "prompt 7", "response": "answer 7"}
    assert lines[0]["content"] is None
    assert all("content" not in line for line in store.export())
    with pytest.raises(UnknownTenant):
        list(store.export("nobody"))


def test_the_chain_head_row_is_created_by_the_migration(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        assert session.execute(text("SELECT last_seq FROM audit_chain_head")).scalar_one() == 0
