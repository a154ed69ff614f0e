"""The LoRA adapter registry.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05

Written by hand to match `server.db.adapter_models` (a test compares them). The partial
unique indexes (one active and one canary version per name) work on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "adapter_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("canary_percent", sa.Integer(), nullable=True),
        sa.Column("base_model", sa.String(length=200), nullable=False),
        sa.Column("base_model_sha256", sa.String(length=64), nullable=True),
        sa.Column("location", sa.String(length=500), nullable=False),
        sa.Column("weights_sha256", sa.String(length=64), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("target_modules", sa.JSON(), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('staged', 'canary', 'active', 'retired')",
            name=op.f("ck_adapter_versions_state_known"),
        ),
        sa.CheckConstraint(
            "(state = 'canary') = (canary_percent IS NOT NULL)",
            name=op.f("ck_adapter_versions_canary_has_percent"),
        ),
        sa.CheckConstraint(
            "canary_percent IS NULL OR (canary_percent > 0 AND canary_percent < 100)",
            name=op.f("ck_adapter_versions_canary_percent_range"),
        ),
        sa.CheckConstraint("version > 0 AND rank > 0", name=op.f("ck_adapter_versions_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adapter_versions")),
        sa.UniqueConstraint("name", "version", name="uq_adapter_versions_name_version"),
    )
    for which in ("active", "canary"):
        op.create_index(
            f"uq_adapter_versions_one_{which}",
            "adapter_versions",
            ["name"],
            unique=True,
            sqlite_where=sa.text(f"state = '{which}'"),
            postgresql_where=sa.text(f"state = '{which}'"),
        )


def downgrade() -> None:
    for which in ("active", "canary"):
        op.drop_index(f"uq_adapter_versions_one_{which}", table_name="adapter_versions")
    op.drop_table("adapter_versions")
