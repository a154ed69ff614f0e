"""The audit trail's tables: one hash-chained row per request, retained texts kept apart.

`audit_events` rows hold no patient text: digests, counts, ids and labels only. Each row
carries `prev_hash` and `row_hash` (see `server.audit.chain`), so editing, inserting or deleting
a row breaks the chain; `audit_chain_head` records the newest position, so deleting the newest
rows is caught too, and its row lock serialises writers from several gateway processes.
`audit_content` holds prompt and response texts only for tenants that turned retention on; it
is outside the chain (the chain commits to the texts' SHA-256), so purging expired texts never
breaks verification.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.db.models import Base, UTCDateTime

GENESIS_HASH = "0" * 64
"""`prev_hash` of the first row."""


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_tenant_id_seq", "tenant_id", "seq"),
        Index("ix_audit_events_tenant_id_created_at", "tenant_id", "created_at"),
        Index("ix_audit_events_tenant_id_completion_id", "tenant_id", "completion_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    request_id: Mapped[str] = mapped_column(String(128))
    completion_id: Mapped[str | None] = mapped_column(String(128))
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="RESTRICT"))
    end_user: Mapped[str | None] = mapped_column(String(256))
    client: Mapped[str | None] = mapped_column(String(512))  # a CDS client: `<sub>@<iss>`
    route: Mapped[str] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(256))
    adapter: Mapped[str | None] = mapped_column(String(256))
    status: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    prompt_sha256: Mapped[str | None] = mapped_column(String(64))
    response_sha256: Mapped[str | None] = mapped_column(String(64))
    citations: Mapped[list[Any]] = mapped_column(JSON)
    intake_mode: Mapped[str | None] = mapped_column(String(16))
    intake_subcategories: Mapped[list[Any]] = mapped_column(JSON)
    red_flags: Mapped[list[Any]] = mapped_column(JSON)
    content_retained: Mapped[bool] = mapped_column(Boolean)
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64))


class AuditContent(Base):
    """Retained texts of one request: `prompt_text` is the canonical JSON of the messages
    (or the plain text the route took), `response_text` the answer; purged at `expires_at`."""

    __tablename__ = "audit_content"

    event_id: Mapped[int] = mapped_column(
        ForeignKey("audit_events.id", ondelete="CASCADE"), primary_key=True
    )
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    prompt_text: Mapped[str | None] = mapped_column(Text)
    response_text: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class AuditChainHead(Base):
    """A single row (id 1): the chain's newest position, written with every append."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))
