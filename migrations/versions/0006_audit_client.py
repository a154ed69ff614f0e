"""The CDS client (EMR) behind an audit row, when it called with its JWT instead of a key.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

Written by hand to match `server.db.audit_models.AuditEvent` (a test compares them). Rows
written before have NULL, and the chain leaves a NULL `client` out of a row's canonical form
(`server.audit.chain.canonical`), so they still verify.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("client", sa.String(length=512), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("client")
