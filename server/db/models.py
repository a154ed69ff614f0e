"""Tables as SQLAlchemy 2 typed declarative models.

The migrations in `migrations/versions` create these tables; a test compares the two so a
model change without a migration fails CI. Every timestamp is a timezone-aware UTC datetime
on the Python side (`UTCDateTime`), whatever the backend stores.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Integer,
    MetaData,
    String,
    TypeDecorator,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Deterministic constraint names, so later migrations can drop or alter them by name on both
PostgreSQL and SQLite (whose batch mode needs names to recreate a table)."""


def utc_now() -> datetime:
    """The current time as an aware UTC datetime (the only kind this package handles)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always an aware UTC datetime in Python.

    PostgreSQL stores `timestamptz` and returns it in the session's time zone; SQLite has no
    time zones and returns naive values. Binding refuses naive datetimes (an ambiguous local
    time is a bug, not a value) and results are normalised to UTC on both backends.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        del dialect  # the same normalisation for every backend
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Tenant(Base):
    """A customer of the gateway: keys, limits, audit rows and feedback belong to one."""

    __tablename__ = "tenants"
    __table_args__ = (
        CheckConstraint("retention_days IS NULL OR retention_days > 0", name="retention_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    # Audit content retention: off by default (no patient text stored); on, texts are kept
    # for `retention_days` and then purged by `clinserve audit purge`.
    retain_content: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    retention_days: Mapped[int | None] = mapped_column(Integer)

    api_keys: Mapped[list[ApiKey]] = relationship(back_populates="tenant")


class ApiKey(Base):
    """One API key. The secret itself is never stored: only its keyed hash (`secret_hash`).

    `public_id` is the non-secret middle of `cs-<public_id>-<secret>`: verification finds the
    row by it, and operators name a key by it in `clinserve keys revoke`. `scopes` is a
    comma-separated, sorted subset of `server.db.keys.SCOPES`. Limits and the intake mode left
    NULL fall back to the deployment's defaults.
    """

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("rpm IS NULL OR rpm > 0", name="rpm_positive"),
        CheckConstraint("tpm IS NULL OR tpm > 0", name="tpm_positive"),
        CheckConstraint(
            "max_concurrent IS NULL OR max_concurrent > 0", name="max_concurrent_positive"
        ),
        CheckConstraint(
            "intake_mode IS NULL OR intake_mode IN ('off', 'annotate', 'normalize')",
            name="intake_mode_known",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="RESTRICT"), index=True
    )
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(200))
    rpm: Mapped[int | None] = mapped_column(Integer)
    tpm: Mapped[int | None] = mapped_column(Integer)
    max_concurrent: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    description: Mapped[str | None] = mapped_column(String(500))
    # The intake mode for this key's chat requests when a request names none: a front end
    # that shows patients' words to clinicians wants `annotate`, a batch pipeline `normalize`.
    intake_mode: Mapped[str | None] = mapped_column(String(16))

    tenant: Mapped[Tenant] = relationship(back_populates="api_keys")
