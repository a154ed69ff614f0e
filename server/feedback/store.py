"""Record, list and export clinician feedback, always within one tenant's completions.

`record` links feedback to the audit row of the completion it rates, found by the tenant and
the completion's `id` together: another tenant's completion is indistinguishable from one that
never existed (same exception, same message), so feedback cannot be used to probe whether a
completion id is in use elsewhere. The route maps `UnknownCompletion` to 404.

`export` is the operator's path to training data (`clinserve feedback export`): it reads every
tenant's feedback, or one tenant's by name, and yields the lines of `server.feedback.export`.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from server.db.audit_models import AuditContent, AuditEvent
from server.db.feedback_models import Feedback
from server.db.models import Tenant, utc_now
from server.feedback.export import (
    FORMATS,
    ExportCounts,
    ExportFormat,
    FeedbackItem,
    choose_texts,
    to_row,
)
from server.feedback.request import DIMENSIONS, FeedbackRequest

EXPORT_BATCH = 500
"""Rows fetched per round trip while exporting, so memory stays flat however much feedback."""


class FeedbackError(Exception):
    """Base of the errors a caller can act on (the CLI prints them as one line)."""


class UnknownCompletion(FeedbackError, LookupError):
    """No completion with that id in the caller's tenant (whether or not another tenant has it)."""


class UnknownTenant(FeedbackError, LookupError):
    """An export named a tenant that does not exist."""


class InvalidExport(FeedbackError, ValueError):
    """An export asked for an unknown format or gave a naive `since`."""


@dataclass(frozen=True)
class FeedbackView:
    """A stored feedback as the route returns it; the texts stay in the database."""

    id: int
    created_at: datetime
    tenant_id: int
    key_id: int | None
    end_user: str | None
    completion_id: str
    audit_event_id: int | None
    rating: int
    dimensions: dict[str, int]
    correction: str | None
    comment: str | None
    texts_supplied: bool

    @classmethod
    def from_row(cls, row: Feedback) -> FeedbackView:
        return cls(
            id=row.id,
            created_at=row.created_at,
            tenant_id=row.tenant_id,
            key_id=row.key_id,
            end_user=row.end_user,
            completion_id=row.completion_id,
            audit_event_id=row.audit_event_id,
            rating=row.rating,
            dimensions=_scores(row),
            correction=row.correction,
            comment=row.comment,
            texts_supplied=row.prompt_messages is not None,
        )

    def to_json(self) -> dict[str, Any]:
        """The route's response body: no tenant, key or audit row ids (they are internal)."""
        return {
            "id": self.id,
            "object": "clinical.feedback",
            "created_at": self.created_at.isoformat(),
            "completion_id": self.completion_id,
            "rating": self.rating,
            "dimensions": self.dimensions,
            "correction": self.correction,
            "comment": self.comment,
            "texts_supplied": self.texts_supplied,
        }


class FeedbackStore:
    """Feedback operations over a session factory; the clock is injected for tests."""

    def __init__(
        self, sessions: sessionmaker[Session], clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._sessions = sessions
        self._clock = clock

    def record(
        self,
        tenant_id: int,
        key_id: int | None,
        end_user: str | None,
        request: FeedbackRequest,
    ) -> FeedbackView:
        """Store `request` against the tenant's completion; `UnknownCompletion` if it has none."""
        with self._sessions.begin() as session:
            event_id = session.scalar(
                select(AuditEvent.id)
                .where(
                    AuditEvent.tenant_id == tenant_id,
                    AuditEvent.completion_id == request.completion_id,
                )
                .order_by(AuditEvent.id)
                .limit(1)
            )
            if event_id is None:
                raise UnknownCompletion(f"no completion with id {request.completion_id!r}")
            scores = request.scores()
            row = Feedback(
                created_at=self._clock(),
                tenant_id=tenant_id,
                key_id=key_id,
                end_user=end_user,
                completion_id=request.completion_id,
                audit_event_id=event_id,
                rating=request.rating,
                **{name: scores.get(name) for name in DIMENSIONS},
                correction=request.correction,
                comment=request.comment,
                prompt_messages=request.message_dicts(),
                response_text=request.response,
            )
            session.add(row)
            session.flush()
            return FeedbackView.from_row(row)

    def list(
        self,
        tenant_id: int,
        *,
        completion_id: str | None = None,
        since: datetime | None = None,
        after_id: int | None = None,
        limit: int = 100,
    ) -> builtins.list[FeedbackView]:
        """The tenant's feedback, oldest first; page with `after_id` (the last id seen)."""
        query = select(Feedback).where(Feedback.tenant_id == tenant_id)
        if completion_id is not None:
            query = query.where(Feedback.completion_id == completion_id)
        if since is not None:
            query = query.where(Feedback.created_at >= since)
        if after_id is not None:
            query = query.where(Feedback.id > after_id)
        with self._sessions() as session:
            rows = session.scalars(query.order_by(Feedback.id).limit(limit)).all()
            return [FeedbackView.from_row(row) for row in rows]

    def export(
        self,
        format: ExportFormat,
        tenant: str | None = None,
        since: datetime | None = None,
        counts: ExportCounts | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The lines of `format` for all feedback (one tenant's if named) since `since`.

        Arguments are checked now (`InvalidExport`, `UnknownTenant`), before the first line is
        asked for; rows are read lazily in batches. `counts`, if given, is updated as the
        iterator advances and is complete once it is exhausted.
        """
        if format not in FORMATS:
            raise InvalidExport(f"unknown export format {format!r}; choose from {FORMATS}")
        if since is not None and (since.tzinfo is None or since.utcoffset() is None):
            raise InvalidExport("since must be timezone-aware")
        tenant_id = None
        if tenant is not None:
            with self._sessions() as session:
                tenant_id = session.scalar(select(Tenant.id).where(Tenant.name == tenant))
            if tenant_id is None:
                raise UnknownTenant(f"no tenant named {tenant!r}")
        return self._export(format, tenant_id, since, counts or ExportCounts())

    def _export(
        self,
        format: ExportFormat,
        tenant_id: int | None,
        since: datetime | None,
        counts: ExportCounts,
    ) -> Iterator[dict[str, Any]]:
        content_usable = and_(
            AuditContent.event_id == Feedback.audit_event_id,
            AuditContent.tenant_id == Feedback.tenant_id,
            # Expired content awaiting the purge job is not retained any more: never train on it.
            or_(AuditContent.expires_at.is_(None), AuditContent.expires_at > self._clock()),
        )
        query = (
            select(
                Feedback,
                Tenant.name,
                AuditEvent.model,
                AuditEvent.adapter,
                AuditContent.prompt_text,
                AuditContent.response_text,
            )
            .join(Tenant, Tenant.id == Feedback.tenant_id)
            .outerjoin(AuditEvent, AuditEvent.id == Feedback.audit_event_id)
            .outerjoin(AuditContent, content_usable)
            .order_by(Feedback.id)
            .execution_options(yield_per=EXPORT_BATCH)
        )
        if tenant_id is not None:
            query = query.where(Feedback.tenant_id == tenant_id)
        if since is not None:
            query = query.where(Feedback.created_at >= since)
        with self._sessions() as session:
            for row, tenant, model, adapter, prompt_text, response_text in session.execute(query):
                item = FeedbackItem(
                    feedback_id=row.id,
                    completion_id=row.completion_id,
                    tenant=tenant,
                    created_at=row.created_at,
                    rating=row.rating,
                    dimensions=_scores(row),
                    correction=row.correction,
                    texts=choose_texts(
                        row.prompt_messages, row.response_text, prompt_text, response_text
                    ),
                    model=model,
                    adapter=adapter,
                )
                outcome = to_row(format, item)
                counts.count(outcome)
                if isinstance(outcome, dict):
                    yield outcome


def _scores(row: Feedback) -> dict[str, int]:
    values = {name: getattr(row, name) for name in DIMENSIONS}
    return {name: value for name, value in values.items() if value is not None}
