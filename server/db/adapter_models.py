"""The adapter registry's table: one row per published version of a named LoRA adapter.

A client asks for the alias `name`; workers load each version under `name@version`, so a
reused name never meets a stale prefix cache. At most one version of a name is `active` and
at most one is `canary` (partial unique indexes, so two operators promoting at once cannot
both win). `location` is relative to the adapters root and checked against it when read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from server.db.models import Base, UTCDateTime

ADAPTER_STATES = ("staged", "canary", "active", "retired")


class AdapterVersionRow(Base):
    __tablename__ = "adapter_versions"
    __table_args__ = (
        UniqueConstraint("name", "version", name="uq_adapter_versions_name_version"),
        CheckConstraint("state IN ('staged', 'canary', 'active', 'retired')", name="state_known"),
        CheckConstraint(
            "(state = 'canary') = (canary_percent IS NOT NULL)", name="canary_has_percent"
        ),
        CheckConstraint(
            "canary_percent IS NULL OR (canary_percent > 0 AND canary_percent < 100)",
            name="canary_percent_range",
        ),
        CheckConstraint("version > 0 AND rank > 0", name="positive"),
        Index(
            "uq_adapter_versions_one_active",
            "name",
            unique=True,
            sqlite_where=text("state = 'active'"),
            postgresql_where=text("state = 'active'"),
        ),
        Index(
            "uq_adapter_versions_one_canary",
            "name",
            unique=True,
            sqlite_where=text("state = 'canary'"),
            postgresql_where=text("state = 'canary'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    canary_percent: Mapped[int | None] = mapped_column(Integer)
    base_model: Mapped[str] = mapped_column(String(200))
    base_model_sha256: Mapped[str | None] = mapped_column(String(64))
    location: Mapped[str] = mapped_column(String(500))
    weights_sha256: Mapped[str] = mapped_column(String(64))
    rank: Mapped[int] = mapped_column(Integer)
    target_modules: Mapped[list[str]] = mapped_column(JSON)
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    state_changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
