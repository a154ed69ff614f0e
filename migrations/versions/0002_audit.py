"""Audit trail: hash-chained events, retained content, the chain head; tenant retention.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

Written by hand to match `server.db.audit_models` and `Tenant` (a test compares them). The
chain head's single row is created here, so concurrent first writers never race to insert it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS_HASH = "0" * 64


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(
            sa.Column("retain_content", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(sa.Column("retention_days", sa.Integer(), nullable=True))
        batch.create_check_constraint(
            op.f("ck_tenants_retention_positive"), "retention_days IS NULL OR retention_days > 0"
        )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("completion_id", sa.String(length=128), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=True),
        sa.Column("key_id", sa.Integer(), nullable=True),
        sa.Column("end_user", sa.String(length=256), nullable=True),
        sa.Column("route", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=256), nullable=True),
        sa.Column("adapter", sa.String(length=256), nullable=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("prompt_sha256", sa.String(length=64), nullable=True),
        sa.Column("response_sha256", sa.String(length=64), nullable=True),
        sa.Column("citations", sa.JSON(), nullable=False),
        sa.Column("intake_mode", sa.String(length=16), nullable=True),
        sa.Column("intake_subcategories", sa.JSON(), nullable=False),
        sa.Column("red_flags", sa.JSON(), nullable=False),
        sa.Column("content_retained", sa.Boolean(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("row_hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["api_keys.id"],
            name=op.f("fk_audit_events_key_id_api_keys"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_audit_events_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
        sa.UniqueConstraint("seq", name=op.f("uq_audit_events_seq")),
    )
    for name, columns in (
        ("ix_audit_events_tenant_id_seq", ["tenant_id", "seq"]),
        ("ix_audit_events_tenant_id_created_at", ["tenant_id", "created_at"]),
        ("ix_audit_events_tenant_id_completion_id", ["tenant_id", "completion_id"]),
    ):
        op.create_index(name, "audit_events", columns, unique=False)
    op.create_table(
        "audit_content",
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("prompt_text", sa.Text(), nullable=True),
        sa.Column("response_text", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["audit_events.id"],
            name=op.f("fk_audit_content_event_id_audit_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_audit_content_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_audit_content")),
    )
    op.create_index(
        op.f("ix_audit_content_expires_at"), "audit_content", ["expires_at"], unique=False
    )
    head = op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_head")),
    )
    op.bulk_insert(head, [{"id": 1, "last_seq": 0, "last_hash": GENESIS_HASH}])


def downgrade() -> None:
    op.drop_table("audit_chain_head")
    op.drop_index(op.f("ix_audit_content_expires_at"), table_name="audit_content")
    op.drop_table("audit_content")
    for name in (
        "ix_audit_events_tenant_id_completion_id",
        "ix_audit_events_tenant_id_created_at",
        "ix_audit_events_tenant_id_seq",
    ):
        op.drop_index(name, table_name="audit_events")
    op.drop_table("audit_events")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_constraint(op.f("ck_tenants_retention_positive"), type_="check")
        batch.drop_column("retention_days")
        batch.drop_column("retain_content")
