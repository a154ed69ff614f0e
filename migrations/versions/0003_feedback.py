"""Clinician feedback on completions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

Written by hand to match `server.db.feedback_models` (a test compares them). The link to the
audit row is SET NULL on delete so purging the audit trail keeps the feedback.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DIMENSIONS = ("accuracy", "safety", "completeness", "guideline_adherence", "communication")


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=True),
        sa.Column("end_user", sa.String(length=256), nullable=True),
        sa.Column("completion_id", sa.String(length=128), nullable=False),
        sa.Column("audit_event_id", sa.Integer(), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=True) for name in _DIMENSIONS),
        sa.Column("correction", sa.Text(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("prompt_messages", sa.JSON(), nullable=True),
        sa.Column("response_text", sa.Text(), nullable=True),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name=op.f("ck_feedback_rating_range")),
        *(
            sa.CheckConstraint(
                f"{name} IS NULL OR {name} BETWEEN 1 AND 5",
                name=op.f(f"ck_feedback_{name}_range"),
            )
            for name in _DIMENSIONS
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_feedback_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["api_keys.id"],
            name=op.f("fk_feedback_key_id_api_keys"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["audit_event_id"],
            ["audit_events.id"],
            name=op.f("fk_feedback_audit_event_id_audit_events"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
    )
    op.create_index(
        "ix_feedback_tenant_id_completion_id", "feedback", ["tenant_id", "completion_id"]
    )
    op.create_index("ix_feedback_tenant_id_created_at", "feedback", ["tenant_id", "created_at"])
    op.create_index(op.f("ix_feedback_audit_event_id"), "feedback", ["audit_event_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_feedback_audit_event_id"), table_name="feedback")
    op.drop_index("ix_feedback_tenant_id_created_at", table_name="feedback")
    op.drop_index("ix_feedback_tenant_id_completion_id", table_name="feedback")
    op.drop_table("feedback")
