"""A per-key default intake mode.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05

Written by hand to match `server.db.models.ApiKey` (a test compares them). NULL means the
deployment's `CLINSERVE_INTAKE__MODE`; existing keys keep that behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("intake_mode", sa.String(length=16), nullable=True))
        batch.create_check_constraint(
            op.f("ck_api_keys_intake_mode_known"),
            "intake_mode IS NULL OR intake_mode IN ('off', 'annotate', 'normalize')",
        )


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_constraint(op.f("ck_api_keys_intake_mode_known"), type_="check")
        batch.drop_column("intake_mode")
