"""Feedback: the request body's validation, then the store on SQLite and PostgreSQL.

Audit rows are inserted directly through the audit models (not the audit store), so these tests
depend only on the audit tables' shape.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import delete, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from server.db.audit_models import AuditContent, AuditEvent
from server.db.feedback_models import SCORE_COLUMNS, Feedback
from server.db.models import Tenant
from server.feedback.request import DIMENSIONS, FeedbackRequest
from server.feedback.store import FeedbackStore, FeedbackView, UnknownCompletion
from tests import db_fixtures

# Fixtures shared with the other DB test modules (see tests/db_fixtures.py).
database_url = db_fixtures.database_url
engine = db_fixtures.engine
migrated = db_fixtures.migrated
sessions = db_fixtures.sessions

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def add_tenant(sessions: sessionmaker[Session], name: str) -> int:
    with sessions.begin() as session:
        tenant = Tenant(name=name)
        session.add(tenant)
        session.flush()
        return tenant.id


def add_completion(
    sessions: sessionmaker[Session],
    tenant_id: int,
    completion_id: str,
    *,
    prompt: list[dict[str, str]] | None = None,
    response: str | None = None,
) -> int:
    """An audit row for a completion, with retained content when `prompt` is given."""
    with sessions.begin() as session:
        event = AuditEvent(**_audit_event_fields(tenant_id, completion_id))
        session.add(event)
        session.flush()
        if prompt is not None:
            session.add(
                AuditContent(
                    event_id=event.id,
                    tenant_id=tenant_id,
                    prompt_text=json.dumps(prompt),
                    response_text=response,
                    expires_at=datetime.now(UTC) + timedelta(days=30),
                )
            )
        return event.id


_SEQ = itertools.count(1)


def _audit_event_fields(tenant_id: int, completion_id: str) -> dict[str, Any]:
    """A complete audit row (the chain hashes are not what these tests are about)."""
    return {
        "seq": next(_SEQ),
        "created_at": datetime.now(UTC),
        "request_id": f"req-{completion_id}",
        "tenant_id": tenant_id,
        "completion_id": completion_id,
        "route": "/v1/chat/completions",
        "model": "clin-7b",
        "adapter": "cardio-v3",
        "status": 200,
        "latency_ms": 12.5,
        "citations": [],
        "intake_subcategories": [],
        "red_flags": [],
        "content_retained": False,
        "prev_hash": "0" * 64,
        "row_hash": "0" * 64,
    }


def body(**fields: Any) -> dict[str, Any]:
    return {"completion_id": "chatcmpl-1", "rating": 4, **fields}


def rated(**fields: Any) -> FeedbackRequest:
    return FeedbackRequest.model_validate(body(**fields))


# --- validation -------------------------------------------------------------------------------


def test_a_full_body_is_accepted() -> None:
    request = FeedbackRequest.model_validate(
        body(
            dimensions={"accuracy": 2, "safety": 1},
            correction="Apixaban 5 mg twice daily.",
            comment="Dose was doubled.",
            messages=[{"role": "user", "content": "AF dose?"}],
            response="Apixaban 10 mg daily.",
        )
    )
    assert request.scores() == {"accuracy": 2, "safety": 1}
    assert request.message_dicts() == [{"role": "user", "content": "AF dose?"}]
    assert FeedbackRequest.model_validate(body(dimensions=None)).scores() == {}


BAD_BODIES = [
    ({"rating": 4}, "completion_id", "Field required"),
    (body(completion_id="chat cmpl"), "completion_id", "printable ASCII"),
    (body(completion_id="x" * 129), "completion_id", "1-128"),
    (body(completion_id=7), "completion_id", "valid string"),
    ({"completion_id": "c"}, "rating", "Field required"),
    (body(rating=0), "rating", "greater than or equal to 1"),
    (body(rating=6), "rating", "less than or equal to 5"),
    (body(rating="4"), "rating", "valid integer"),
    (body(rating=4.0), "rating", "valid integer"),
    (body(rating=True), "rating", "valid integer"),
    (body(dimensions={"saftey": 3}), "dimensions", "unknown dimension 'saftey'; choose from"),
    (body(dimensions={"safety": 9}), "dimensions.safety", "less than or equal to 5"),
    (body(dimensions={"safety": "3"}), "dimensions.safety", "valid integer"),
    (body(dimensions=[3]), "dimensions", "valid dictionary"),
    (body(correction="  \n"), "correction", "is blank"),
    (body(correction="x" * 20_001), "correction", "at most 20000 characters"),
    (body(correction="a\x00b"), "correction", "control characters"),
    (body(comment="x" * 4_001), "comment", "at most 4000 characters"),
    (body(comment="bad \ufffd byte"), "comment", "undecodable"),
    (body(messages=[]), "messages", "at least 1 item"),
    (body(messages=[{"role": "tool", "content": "x"}]), "messages.0.role", "'assistant'"),
    (body(messages=[{"role": "user"}]), "messages.0.content", "Field required"),
    (body(messages=[{"role": "user", "content": [{"text": "x"}]}]), "messages.0.content", "string"),
    (body(messages=[{"role": "user", "content": "x", "name": "n"}]), "messages.0.name", "Extra"),
    (body(response="x"), "", "'response' needs the 'messages' it answered"),
    (body(response=5, messages=[{"role": "user", "content": "x"}]), "response", "valid string"),
    (body(score=3), "score", "Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("payload", "param", "message"), BAD_BODIES)
def test_each_bad_field_is_named(payload: dict[str, Any], param: str, message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        FeedbackRequest.model_validate(payload)
    errors = raised.value.errors(include_url=False)
    assert len(errors) == 1, errors
    assert ".".join(map(str, errors[0]["loc"])) == param
    assert message in errors[0]["msg"]


def test_the_wire_dimensions_are_the_stored_columns() -> None:
    assert DIMENSIONS == SCORE_COLUMNS


# --- the store --------------------------------------------------------------------------------


def test_record_links_the_audit_row(sessions: sessionmaker[Session]) -> None:
    store = FeedbackStore(sessions, clock=lambda: NOW)
    tenant = add_tenant(sessions, "st-marys")
    event_id = add_completion(sessions, tenant, "chatcmpl-1")
    view = store.record(
        tenant,
        None,
        "dr-lee",
        rated(dimensions={"safety": 2}, correction="Fixed.", comment="Unsafe dose."),
    )
    assert view == FeedbackView(
        id=view.id,
        created_at=NOW,
        tenant_id=tenant,
        key_id=None,
        end_user="dr-lee",
        completion_id="chatcmpl-1",
        audit_event_id=event_id,
        rating=4,
        dimensions={"safety": 2},
        correction="Fixed.",
        comment="Unsafe dose.",
        texts_supplied=False,
    )
    assert view.to_json()["created_at"] == "2026-11-22T12:00:00+00:00"
    assert store.list(tenant) == [view]


def test_another_tenants_completion_looks_missing(sessions: sessionmaker[Session]) -> None:
    store = FeedbackStore(sessions)
    a, b = add_tenant(sessions, "a"), add_tenant(sessions, "b")
    add_completion(sessions, a, "chatcmpl-of-a")
    request = rated(completion_id="chatcmpl-of-a")
    with pytest.raises(UnknownCompletion) as foreign:
        store.record(b, None, None, request)
    with pytest.raises(UnknownCompletion) as missing:
        store.record(b, None, None, rated(completion_id="nope"))
    assert str(foreign.value) == str(missing.value).replace("nope", "chatcmpl-of-a")
    assert store.list(a) == [] and store.list(b) == []
    store.record(a, None, None, request)
    assert len(store.list(a)) == 1 and store.list(b) == []


def test_texts_and_key_are_stored(sessions: sessionmaker[Session]) -> None:
    store = FeedbackStore(sessions)
    tenant = add_tenant(sessions, "t")
    add_completion(sessions, tenant, "chatcmpl-1")
    with sessions.begin() as session:
        session.execute(
            text(
                "INSERT INTO api_keys (public_id, tenant_id, secret_hash, scopes, created_at) "
                "VALUES ('k1', :t, 'h', 'feedback', CURRENT_TIMESTAMP)"
            ),
            {"t": tenant},
        )
        key_id = session.scalar(text("SELECT id FROM api_keys"))
    conversation = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "房颤 dose?"},
    ]
    request = rated(messages=conversation, response="10 mg.", correction="5 mg.")
    view = store.record(tenant, key_id, None, request)
    assert view.texts_supplied and view.key_id == key_id
    with sessions() as session:
        row = session.get_one(Feedback, view.id)
        assert row.prompt_messages == conversation and row.response_text == "10 mg."


def test_list_filters_and_pages(sessions: sessionmaker[Session]) -> None:
    times = iter([NOW - timedelta(days=2), NOW - timedelta(days=1), NOW])
    store = FeedbackStore(sessions, clock=lambda: next(times))
    tenant = add_tenant(sessions, "t")
    add_completion(sessions, tenant, "c1")
    add_completion(sessions, tenant, "c2")
    for completion_id in ("c1", "c2", "c1"):  # several feedbacks may rate one completion
        store.record(tenant, None, None, rated(completion_id=completion_id))
    everything = store.list(tenant)
    assert [v.completion_id for v in everything] == ["c1", "c2", "c1"]
    assert [v.id for v in store.list(tenant, completion_id="c1")] == [
        everything[0].id,
        everything[2].id,
    ]
    assert store.list(tenant, since=NOW - timedelta(hours=1)) == [everything[2]]
    assert store.list(tenant, limit=2) == everything[:2]
    assert store.list(tenant, after_id=everything[1].id) == [everything[2]]


def test_purging_the_audit_row_keeps_the_feedback(sessions: sessionmaker[Session]) -> None:
    store = FeedbackStore(sessions)
    tenant = add_tenant(sessions, "t")
    add_completion(sessions, tenant, "c1", prompt=[{"role": "user", "content": "q"}])
    view = store.record(tenant, None, None, rated(completion_id="c1"))
    with sessions.begin() as session:
        session.execute(delete(AuditContent))
        session.execute(delete(AuditEvent))
    (kept,) = store.list(tenant)
    assert kept.id == view.id and kept.audit_event_id is None and kept.completion_id == "c1"


@pytest.mark.parametrize("column", ["rating", *SCORE_COLUMNS])
def test_scores_are_checked_by_the_database(sessions: sessionmaker[Session], column: str) -> None:
    tenant = add_tenant(sessions, "t")
    values = {"rating": 3, column: 6}
    with pytest.raises(IntegrityError, match=f"(?i)check constraint|ck_feedback_{column}_range"):
        with sessions.begin() as session:
            session.add(Feedback(tenant_id=tenant, completion_id="c", **values))
    with sessions() as session:
        assert session.scalar(select(Feedback.id)) is None
