"""Export formats: the pure row builders, then exports from a real database (both backends)."""

from __future__ import annotations

import doctest
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, update
from sqlalchemy.orm import Session, sessionmaker

from server.db.audit_models import AuditContent, AuditEvent
from server.feedback import export
from server.feedback.export import (
    ExportCounts,
    FeedbackItem,
    Skip,
    Texts,
    choose_texts,
    parse_retained_prompt,
    preference_row,
    rubric_row,
    sft_row,
)
from server.feedback.request import FeedbackRequest
from server.feedback.store import FeedbackStore, InvalidExport, UnknownTenant
from tests import db_fixtures
from tests.test_feedback_store import add_completion, add_tenant

# Fixtures shared with the other DB test modules (see tests/db_fixtures.py).
database_url = db_fixtures.database_url
engine = db_fixtures.engine
migrated = db_fixtures.migrated
sessions = db_fixtures.sessions

QUESTION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "AF dose?"}]


def item(**changes: object) -> FeedbackItem:
    base = FeedbackItem(
        feedback_id=3,
        completion_id="chatcmpl-a",
        tenant="st-marys",
        created_at=datetime(2026, 11, 1, 9, 30, tzinfo=UTC),
        rating=2,
        dimensions={"accuracy": 1, "communication": 4},
        correction="Apixaban 5 mg twice daily.",
        texts=Texts(QUESTION, "Apixaban 10 mg daily.", "feedback_body"),
        model="clin-7b",
        adapter="cardio-v3",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_doctests_pass() -> None:
    result = doctest.testmod(export)
    assert result.attempted > 0 and result.failed == 0


def test_sft_appends_the_correction_as_the_answer() -> None:
    row = sft_row(item())
    assert isinstance(row, dict)
    assert row["messages"] == [
        *QUESTION,
        {"role": "assistant", "content": "Apixaban 5 mg twice daily."},
    ]
    assert row["meta"] == {
        "feedback_id": 3,
        "completion_id": "chatcmpl-a",
        "tenant": "st-marys",
        "created_at": "2026-11-01T09:30:00+00:00",
        "text_source": "feedback_body",
        "model": "clin-7b",
        "adapter": "cardio-v3",
    }
    # SFT needs no original response: the correction replaces it.
    assert isinstance(sft_row(item(texts=Texts(QUESTION, None, "retained"))), dict)
    assert sft_row(item(correction=None)) is Skip.NO_CORRECTION
    assert sft_row(item(texts=None)) is Skip.NO_TEXT


def test_preference_is_trl_conversational_with_explicit_prompt() -> None:
    row = preference_row(item())
    assert isinstance(row, dict)
    assert set(row) == {"prompt", "chosen", "rejected", "meta"}
    assert row["prompt"] == QUESTION
    assert row["chosen"] == [{"role": "assistant", "content": "Apixaban 5 mg twice daily."}]
    assert row["rejected"] == [{"role": "assistant", "content": "Apixaban 10 mg daily."}]
    assert preference_row(item(correction=None)) is Skip.NO_CORRECTION
    assert preference_row(item(texts=Texts(QUESTION, None, "retained"))) is Skip.NO_TEXT
    assert preference_row(item(texts=None)) is Skip.NO_TEXT


def test_rubric_has_every_dimension_and_needs_no_correction() -> None:
    row = rubric_row(item(correction=None))
    assert isinstance(row, dict)
    assert row["prompt"] == QUESTION and row["response"] == "Apixaban 10 mg daily."
    assert row["rating"] == 2
    assert row["dimensions"] == {
        "accuracy": 1,
        "safety": None,
        "completeness": None,
        "guideline_adherence": None,
        "communication": 4,
    }
    assert rubric_row(item(texts=None)) is Skip.NO_TEXT
    assert rubric_row(item(texts=Texts(QUESTION, None, "feedback_body"))) is Skip.NO_TEXT


def test_texts_come_from_the_body_first_and_are_never_mixed() -> None:
    body = choose_texts(QUESTION, None, json.dumps([{"role": "user", "content": "x"}]), "old")
    assert body == Texts(QUESTION, None, "feedback_body")  # not the retained response
    retained = choose_texts(None, None, json.dumps(QUESTION), "answer")
    assert retained == Texts(QUESTION, "answer", "retained")
    assert choose_texts(None, None, None, "answer") is None


def test_retained_prompts_that_are_not_text_only_are_unusable() -> None:
    tool_call = [{"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]}]
    assert parse_retained_prompt(json.dumps(tool_call)) is None
    assert parse_retained_prompt(json.dumps([{"role": "tool", "content": "42"}])) is None
    assert parse_retained_prompt("[]") is None
    # JSON that is not a message list is plain text the user wrote.
    assert parse_retained_prompt('{"a": 1}') == [{"role": "user", "content": '{"a": 1}'}]
    assert parse_retained_prompt("42") == [{"role": "user", "content": "42"}]


def test_counts() -> None:
    counts = ExportCounts()
    for outcome in (sft_row(item()), sft_row(item(correction=None)), sft_row(item(texts=None))):
        counts.count(outcome)
    counts.count(sft_row(item(texts=Texts(QUESTION, None, "retained"))))
    assert counts == ExportCounts(
        written=2,
        skipped_no_text=1,
        skipped_no_correction=1,
        from_retained=1,
        from_feedback_body=1,
    )


# --- from the database ------------------------------------------------------------------------


def _feedback(completion_id: str, **fields: object) -> FeedbackRequest:
    return FeedbackRequest.model_validate({"completion_id": completion_id, "rating": 2, **fields})


@pytest.fixture
def seeded(sessions: sessionmaker[Session]) -> FeedbackStore:
    """Two tenants; feedback with retained texts, body texts, no texts, and no correction."""
    store = FeedbackStore(sessions)
    a, b = add_tenant(sessions, "st-marys"), add_tenant(sessions, "general")
    add_completion(sessions, a, "c-retained", prompt=QUESTION, response="10 mg daily.")
    add_completion(sessions, a, "c-body")
    add_completion(sessions, a, "c-none")
    add_completion(sessions, b, "c-other", prompt=QUESTION, response="Other answer.")
    fix = "5 mg twice daily."
    store.record(a, None, None, _feedback("c-retained", correction=fix))
    store.record(
        a,
        None,
        None,
        _feedback("c-body", correction=fix, messages=QUESTION, response="Body answer."),
    )
    store.record(a, None, None, _feedback("c-none", correction=fix))
    store.record(b, None, None, _feedback("c-other", dimensions={"safety": 5}))
    return store


def test_export_sft_from_both_sources(seeded: FeedbackStore) -> None:
    counts = ExportCounts()
    rows = list(seeded.export("sft", counts=counts))
    assert [row["meta"]["completion_id"] for row in rows] == ["c-retained", "c-body"]
    assert [row["meta"]["text_source"] for row in rows] == ["retained", "feedback_body"]
    assert rows[0]["messages"][-1] == {"role": "assistant", "content": "5 mg twice daily."}
    assert rows[0]["meta"]["tenant"] == "st-marys"
    assert counts == ExportCounts(2, 1, 1, 1, 1)


def test_export_preference_and_rubric(seeded: FeedbackStore) -> None:
    pairs = list(seeded.export("preference"))
    assert [p["rejected"][0]["content"] for p in pairs] == ["10 mg daily.", "Body answer."]
    counts = ExportCounts()
    rubric = list(seeded.export("rubric", counts=counts))
    assert [r["meta"]["completion_id"] for r in rubric] == ["c-retained", "c-body", "c-other"]
    assert rubric[2]["dimensions"]["safety"] == 5 and rubric[2]["meta"]["tenant"] == "general"
    assert (counts.written, counts.skipped_no_text, counts.skipped_no_correction) == (3, 1, 0)


def test_export_filters_by_tenant_and_since(seeded: FeedbackStore) -> None:
    assert [r["meta"]["tenant"] for r in seeded.export("rubric", tenant="general")] == ["general"]
    assert list(seeded.export("rubric", since=datetime.now(UTC) + timedelta(hours=1))) == []
    assert len(list(seeded.export("rubric", since=datetime.now(UTC) - timedelta(hours=1)))) == 3
    with pytest.raises(UnknownTenant, match="no tenant named 'nobody'"):
        seeded.export("rubric", tenant="nobody")  # raised at the call, not on first row
    with pytest.raises(InvalidExport, match="unknown export format"):
        seeded.export("csv")  # type: ignore[arg-type]
    with pytest.raises(InvalidExport, match="timezone-aware"):
        seeded.export("sft", since=datetime(2026, 1, 1))


def test_expired_or_purged_content_is_not_exported(
    seeded: FeedbackStore, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as session:
        session.execute(
            update(AuditContent).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    counts = ExportCounts()
    assert [r["meta"]["text_source"] for r in seeded.export("sft", counts=counts)] == [
        "feedback_body"
    ]
    assert counts.skipped_no_text == 2
    with sessions.begin() as session:  # the audit trail's purge: content, then events
        session.execute(delete(AuditContent))
        session.execute(delete(AuditEvent))
    rows = list(seeded.export("rubric"))
    assert [r["meta"]["completion_id"] for r in rows] == ["c-body"]  # its texts are its own
    assert rows[0]["meta"]["model"] is None  # the audit row is gone; the feedback stays
