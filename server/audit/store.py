"""Append, read, verify and purge the audit trail in the database.

`append` is the only writer of `audit_events`. It first updates the chain head's single row,
which takes that row's write lock (PostgreSQL) or the database's write lock (SQLite) before
anything is read, so appends from several gateway processes queue up and each batch continues
the chain exactly where the previous one ended.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from server.audit.chain import CHAINED_COLUMNS, AuditRecord, row_hash
from server.db.audit_models import GENESIS_HASH, AuditChainHead, AuditContent, AuditEvent
from server.db.models import Tenant, utc_now

HEAD_ID = 1
MAX_PAGE = 500
VERIFY_PAGE = 1000


class UnknownTenant(LookupError):
    """A retention change or an export named a tenant that does not exist."""


@dataclass(frozen=True)
class EventFilter:
    """What the admin route and the export may narrow a listing by (all optional)."""

    since: datetime | None = None
    until: datetime | None = None
    route: str | None = None
    status: int | None = None
    key_id: int | None = None
    end_user: str | None = None
    model: str | None = None
    has_red_flags: bool | None = None


@dataclass(frozen=True)
class Verification:
    """The outcome of walking the chain: intact, or the first problem and where."""

    intact: bool
    rows: int
    problem: str | None = None
    seq: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"intact": self.intact, "rows": self.rows, "problem": self.problem, "seq": self.seq}


def event_json(row: AuditEvent) -> dict[str, Any]:
    """An audit row as the admin route and the export show it (never any text)."""
    fields = {name: getattr(row, name) for name in CHAINED_COLUMNS}
    fields["created_at"] = row.created_at.isoformat()
    return {"id": row.id, **fields, "row_hash": row.row_hash}


class AuditStore:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        chain_key: bytes,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._sessions = sessions
        self._key = chain_key
        self._clock = clock

    def append(self, records: Sequence[AuditRecord]) -> None:
        """Chain and store `records` in one transaction (all or none), as one multi-row
        insert per table: a batch costs a few round trips, not one per row."""
        if not records:
            return
        with self._sessions.begin() as session:
            session.execute(  # the lock first: see the module docstring
                update(AuditChainHead)
                .where(AuditChainHead.id == HEAD_ID)
                .values(last_seq=AuditChainHead.last_seq)
            )
            head = session.get_one(AuditChainHead, HEAD_ID, populate_existing=True)
            retention = self._retention(session, {r.tenant_id for r in records})
            seq, prev = head.last_seq, head.last_hash
            events: list[dict[str, Any]] = []
            contents: dict[int, dict[str, Any]] = {}  # by seq: the row ids are not known yet
            for record in records:
                seq += 1
                days = retention.get(record.tenant_id)
                fields = {
                    **record.chained_fields(),
                    "seq": seq,
                    "content_retained": days is not None,
                    "prev_hash": prev,
                }
                prev = row_hash(self._key, prev, fields)
                events.append({**fields, "row_hash": prev})
                if days is not None:
                    contents[seq] = {
                        "tenant_id": record.tenant_id,
                        "prompt_text": record.prompt_text,
                        "response_text": record.response_text,
                        "expires_at": record.created_at + timedelta(days=days),
                    }
            session.execute(insert(AuditEvent), events)
            if contents:
                ids = session.execute(
                    select(AuditEvent.seq, AuditEvent.id).where(AuditEvent.seq.in_(contents))
                )
                session.execute(
                    insert(AuditContent),
                    [{"event_id": event_id, **contents[at]} for at, event_id in ids],
                )
            head.last_seq, head.last_hash = seq, prev

    @staticmethod
    def _retention(session: Session, tenant_ids: set[int | None]) -> dict[int | None, int]:
        """Retention days per tenant that retains content (absent: keep no text)."""
        ids = {tenant_id for tenant_id in tenant_ids if tenant_id is not None}
        if not ids:
            return {}
        rows = session.execute(
            select(Tenant.id, Tenant.retention_days).where(
                Tenant.id.in_(ids), Tenant.retain_content.is_(True)
            )
        )
        return {tenant_id: days for tenant_id, days in rows if days is not None}

    def list_events(
        self,
        tenant_id: int | None,
        where: EventFilter = EventFilter(),
        *,
        after_seq: int | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """One tenant's rows (None: rows made with authentication off), oldest first, from
        after `after_seq`; at most `MAX_PAGE`."""
        query = select(AuditEvent).where(
            AuditEvent.tenant_id.is_(None)
            if tenant_id is None
            else AuditEvent.tenant_id == tenant_id
        )
        query = _filtered(query, where)
        if after_seq is not None:
            query = query.where(AuditEvent.seq > after_seq)
        query = query.order_by(AuditEvent.seq).limit(max(1, min(limit, MAX_PAGE)))
        with self._sessions() as session:
            return [event_json(row) for row in session.scalars(query)]

    def export(
        self,
        tenant: str | None = None,
        where: EventFilter = EventFilter(),
        with_content: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """Every matching row, oldest first, read page by page (flat memory)."""
        with self._sessions() as session:
            query = select(AuditEvent)
            if tenant is not None:
                tenant_id = session.scalar(select(Tenant.id).where(Tenant.name == tenant))
                if tenant_id is None:
                    raise UnknownTenant(f"no tenant named {tenant!r}")
                query = query.where(AuditEvent.tenant_id == tenant_id)
            query = _filtered(query, where).order_by(AuditEvent.seq)
            last = 0
            while True:
                page = session.scalars(query.where(AuditEvent.seq > last).limit(VERIFY_PAGE)).all()
                if not page:
                    return
                contents = self._contents(session, [row.id for row in page]) if with_content else {}
                for row in page:
                    line = event_json(row)
                    if with_content:
                        line["content"] = contents.get(row.id)
                    yield line
                last = page[-1].seq
                session.expunge_all()

    def _contents(self, session: Session, event_ids: list[int]) -> dict[int, dict[str, Any]]:
        now = self._clock()
        rows = session.scalars(
            select(AuditContent).where(
                AuditContent.event_id.in_(event_ids), AuditContent.expires_at > now
            )
        )
        return {
            row.event_id: {"prompt": row.prompt_text, "response": row.response_text} for row in rows
        }

    def verify(self) -> Verification:
        """Walk the whole chain: the first edited, inserted or deleted row, or intact."""
        prev, expected, rows = GENESIS_HASH, 1, 0
        with self._sessions() as session:
            while True:
                page = session.scalars(
                    select(AuditEvent)
                    .where(AuditEvent.seq >= expected)
                    .order_by(AuditEvent.seq)
                    .limit(VERIFY_PAGE)
                ).all()
                for row in page:
                    if row.seq != expected:
                        return Verification(
                            False, rows, f"row(s) {expected}..{row.seq - 1} deleted", expected
                        )
                    if row.prev_hash != prev:
                        return Verification(
                            False, rows, "row does not follow its predecessor", row.seq
                        )
                    fields = {name: getattr(row, name) for name in CHAINED_COLUMNS}
                    if row_hash(self._key, prev, fields) != row.row_hash:
                        return Verification(False, rows, "row was modified", row.seq)
                    prev, expected, rows = row.row_hash, expected + 1, rows + 1
                if len(page) < VERIFY_PAGE:
                    break
                session.expunge_all()
            if session.scalar(select(AuditEvent.id).where(AuditEvent.seq < 1).limit(1)):
                return Verification(False, rows, "row outside the chain's numbering", None)
            head = session.get_one(AuditChainHead, HEAD_ID)
            if (head.last_seq, head.last_hash) != (expected - 1, prev):
                return Verification(
                    False, rows, f"newest rows deleted: the head says {head.last_seq}", expected
                )
        return Verification(True, rows)

    def set_retention(self, tenant: str, days: int | None) -> None:
        """Keep texts for `days` from now on (None: stop keeping them; purge drops the rest)."""
        if days is not None and days < 1:
            raise ValueError("retention days must be a positive integer")
        with self._sessions.begin() as session:
            row = session.scalar(select(Tenant).where(Tenant.name == tenant))
            if row is None:
                raise UnknownTenant(f"no tenant named {tenant!r}")
            row.retain_content, row.retention_days = days is not None, days

    def purge(self) -> int:
        """Delete retained texts past their expiry, texts older than their tenant's current
        retention (a shortened period applies to what was kept before it too: a hospital
        that cuts retention to 30 days means every text), and all texts of tenants that
        turned retention off; the chain is untouched. Returns how many were deleted."""
        now = self._clock()
        stopped = select(Tenant.id).where(Tenant.retain_content.is_(False))
        with self._sessions.begin() as session:
            deleted = _count(
                session.execute(
                    delete(AuditContent).where(
                        (AuditContent.expires_at <= now) | AuditContent.tenant_id.in_(stopped)
                    )
                )
            )
            periods = session.execute(
                select(Tenant.id, Tenant.retention_days).where(Tenant.retain_content.is_(True))
            ).all()
            for tenant_id, days in periods:
                if days is None:  # retention without a period: the stored expiry decides
                    continue
                older = select(AuditEvent.id).where(
                    AuditEvent.tenant_id == tenant_id,
                    AuditEvent.created_at <= now - timedelta(days=days),
                )
                deleted += _count(
                    session.execute(
                        delete(AuditContent).where(
                            AuditContent.tenant_id == tenant_id, AuditContent.event_id.in_(older)
                        )
                    )
                )
            return deleted


def _count(result: Any) -> int:
    """Rows a DELETE removed (the DBAPI's rowcount; 0 if it reports none)."""
    return int(getattr(result, "rowcount", 0) or 0)


def _filtered(query: Any, where: EventFilter) -> Any:
    conditions = [
        (where.since, lambda v: AuditEvent.created_at >= v),
        (where.until, lambda v: AuditEvent.created_at < v),
        (where.route, lambda v: AuditEvent.route == v),
        (where.status, lambda v: AuditEvent.status == v),
        (where.key_id, lambda v: AuditEvent.key_id == v),
        (where.end_user, lambda v: AuditEvent.end_user == v),
        (where.model, lambda v: AuditEvent.model == v),
    ]
    for value, condition in conditions:
        if value is not None:
            query = query.where(condition(value))
    if where.has_red_flags is not None:
        flagged = func.json_array_length(AuditEvent.red_flags) > 0  # SQLite and PostgreSQL
        query = query.where(flagged if where.has_red_flags else ~flagged)
    return query
