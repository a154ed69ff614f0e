"""The `feedback` table: a clinician's rating of one chat completion, kept as training data.

A row names the completion by its OpenAI `id` and points at the audit row recorded for it.
The pointer is nullable and set to NULL when the audit row is purged, because the judgement
(and a correction) stays worth keeping after the trail's own retention period; `completion_id`
still names the completion then. `prompt_messages` and `response_text` hold the texts only when
the client supplied them in the feedback body (tenants that do not retain content in the audit
trail): they are what an export trains on when no retained content exists.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.db.models import Base, UTCDateTime, utc_now

SCORE_COLUMNS = ("accuracy", "safety", "completeness", "guideline_adherence", "communication")
"""The rubric dimensions, one nullable 1-5 column each (the overall score is `rating`)."""


def _score_range(column: str, *, nullable: bool) -> CheckConstraint:
    condition = f"{column} BETWEEN 1 AND 5"
    if nullable:
        condition = f"{column} IS NULL OR {condition}"
    return CheckConstraint(condition, name=f"{column}_range")


class Feedback(Base):
    """One piece of feedback; several may rate the same completion (e.g. two clinicians)."""

    __tablename__ = "feedback"
    __table_args__ = (
        _score_range("rating", nullable=False),
        *(_score_range(column, nullable=True) for column in SCORE_COLUMNS),
        # The store's lookups: a tenant's feedback on one completion, and a tenant's history.
        Index("ix_feedback_tenant_id_completion_id", "tenant_id", "completion_id"),
        Index("ix_feedback_tenant_id_created_at", "tenant_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    end_user: Mapped[str | None] = mapped_column(String(256))
    completion_id: Mapped[str] = mapped_column(String(128))
    # Indexed so purging audit rows (which sets this to NULL) does not scan the table.
    audit_event_id: Mapped[int | None] = mapped_column(
        ForeignKey("audit_events.id", ondelete="SET NULL"), index=True
    )
    rating: Mapped[int] = mapped_column(Integer)
    accuracy: Mapped[int | None] = mapped_column(Integer)
    safety: Mapped[int | None] = mapped_column(Integer)
    completeness: Mapped[int | None] = mapped_column(Integer)
    guideline_adherence: Mapped[int | None] = mapped_column(Integer)
    communication: Mapped[int | None] = mapped_column(Integer)
    correction: Mapped[str | None] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text)
    prompt_messages: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    response_text: Mapped[str | None] = mapped_column(Text)
