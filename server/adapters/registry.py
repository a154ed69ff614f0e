"""The adapter registry: published versions of named LoRA adapters and their states.

States: `staged` (published, loaded on workers, not routed), `canary` (gets a share of the
alias's traffic), `active` (what the alias means), `retired` (unloaded, files kept for a
rollback). Every change is one transaction, and the database's partial unique indexes keep
one active and one canary version per name even when two operators act at once.

`rollback` undoes the last promotion: the active version is retired and the version that was
active before it (the most recently activated retired one) becomes active again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from server.db.adapter_models import AdapterVersionRow
from server.db.models import utc_now

NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
"""Lower-case, no `@` (it separates name and version in what workers load) and no `/`."""
_VERSION_ATTEMPTS = 5


class RegistryError(Exception):
    """A change the registry's rules refuse; the message says what to do instead."""


class UnknownAdapter(RegistryError, LookupError):
    """No such name, or no such version of it."""


@dataclass(frozen=True)
class AdapterVersion:
    name: str
    version: int
    state: str
    canary_percent: int | None
    base_model: str
    base_model_sha256: str | None
    location: str  # relative to the adapters root
    weights_sha256: str
    rank: int
    target_modules: tuple[str, ...]
    manifest: dict[str, Any]
    created_at: datetime
    state_changed_at: datetime
    activated_at: datetime | None

    @property
    def served_name(self) -> str:
        """The name workers load it under: a new version is a new name, never stale weights."""
        return f"{self.name}@{self.version}"

    @classmethod
    def from_row(cls, row: AdapterVersionRow) -> AdapterVersion:
        return cls(
            name=row.name,
            version=row.version,
            state=row.state,
            canary_percent=row.canary_percent,
            base_model=row.base_model,
            base_model_sha256=row.base_model_sha256,
            location=row.location,
            weights_sha256=row.weights_sha256,
            rank=row.rank,
            target_modules=tuple(row.target_modules),
            manifest=dict(row.manifest),
            created_at=row.created_at,
            state_changed_at=row.state_changed_at,
            activated_at=row.activated_at,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "served_name": self.served_name,
            "state": self.state,
            "canary_percent": self.canary_percent,
            "base_model": self.base_model,
            "base_model_sha256": self.base_model_sha256,
            "location": self.location,
            "weights_sha256": self.weights_sha256,
            "rank": self.rank,
            "target_modules": list(self.target_modules),
            "manifest": self.manifest,
            "created_at": self.created_at.isoformat(),
            "state_changed_at": self.state_changed_at.isoformat(),
            "activated_at": self.activated_at.isoformat() if self.activated_at else None,
        }


@dataclass(frozen=True)
class NewVersion:
    """What publishing registers. `place(location)` puts the files at `location` (relative
    to the adapters root); it runs once the version's row holds that location, inside the
    registering transaction, so a failure leaves no row and two publishes never share one."""

    base_model: str
    base_model_sha256: str | None
    weights_sha256: str
    rank: int
    target_modules: tuple[str, ...]
    manifest: dict[str, Any]
    place: Callable[[str], None]


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise RegistryError(
            f"invalid adapter name {name!r}: 1-64 of a-z, 0-9, '.', '_' or '-', starting with "
            "a letter or digit"
        )
    return name


def check_canary_percent(percent: int) -> int:
    if not 0 < percent < 100:
        raise RegistryError(f"a canary share is 1-99 percent, got {percent}")
    return percent


def _refuse_failed_gate(row: AdapterVersionRow) -> None:
    if (row.manifest.get("evaluation") or {}).get("gate_passed") == 0:
        raise RegistryError(
            f"{row.name}@{row.version} failed its evaluation gate; publish a better version"
        )


class AdapterRegistry:
    def __init__(
        self, sessions: sessionmaker[Session], clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._sessions = sessions
        self._clock = clock

    def register(
        self, name: str, new: NewVersion, canary_percent: int | None = None
    ) -> AdapterVersion:
        """Record the next version of `name`: `staged`, or `canary` with that share of
        traffic (which needs an active version to share it with)."""
        check_name(name)
        if canary_percent is not None:
            check_canary_percent(canary_percent)
        for _ in range(_VERSION_ATTEMPTS):
            try:
                with self._sessions.begin() as session:
                    if canary_percent is not None:
                        self._require_active(session, name, "a canary")
                        self._clear_canary(session, name)
                    latest = session.scalar(
                        select(func.max(AdapterVersionRow.version)).where(
                            AdapterVersionRow.name == name
                        )
                    )
                    version = (latest or 0) + 1
                    now = self._clock()
                    row = AdapterVersionRow(
                        name=name,
                        version=version,
                        state="staged" if canary_percent is None else "canary",
                        canary_percent=canary_percent,
                        base_model=new.base_model,
                        base_model_sha256=new.base_model_sha256,
                        location=f"{name}/{version}",
                        weights_sha256=new.weights_sha256,
                        rank=new.rank,
                        target_modules=list(new.target_modules),
                        manifest=new.manifest,
                        created_at=now,
                        state_changed_at=now,
                    )
                    session.add(row)
                    session.flush()  # the version number is ours from here on
                    new.place(row.location)
                    return AdapterVersion.from_row(row)
            except IntegrityError:
                continue  # another publish of this name took the version number: next one
        raise RegistryError(f"could not allocate a version of {name!r}: too many publishes at once")

    def list_versions(self, name: str | None = None) -> list[AdapterVersion]:
        query = select(AdapterVersionRow).order_by(
            AdapterVersionRow.name, AdapterVersionRow.version
        )
        if name is not None:
            query = query.where(AdapterVersionRow.name == name)
        with self._sessions() as session:
            return [AdapterVersion.from_row(row) for row in session.scalars(query)]

    def get(self, name: str, version: int) -> AdapterVersion:
        with self._sessions() as session:
            return AdapterVersion.from_row(self._row(session, name, version))

    def promote(self, name: str, version: int) -> AdapterVersion:
        """Make `version` what the alias means; the version active before is retired (and
        is what `rollback` returns to)."""
        with self._sessions.begin() as session:
            row = self._row(session, name, version)
            if row.state == "active":
                raise RegistryError(f"{name}@{version} is already active")
            _refuse_failed_gate(row)
            current = self._active(session, name)
            if current is not None:
                self._set(session, current, "retired")
            return AdapterVersion.from_row(self._set(session, row, "active"))

    def record_evaluation(
        self, name: str, version: int, evaluation: dict[str, float]
    ) -> AdapterVersion:
        """Merge evaluation results into the version's manifest (an evaluation gate's
        verdict, measured after publishing)."""
        with self._sessions.begin() as session:
            row = self._row(session, name, version)
            recorded = {**(row.manifest.get("evaluation") or {}), **evaluation}
            row.manifest = {**row.manifest, "evaluation": recorded}
            return AdapterVersion.from_row(row)

    def set_canary(self, name: str, version: int, percent: int) -> AdapterVersion:
        """Send `percent` of the alias's traffic to `version` (a canary in progress for
        another version goes back to staged)."""
        check_canary_percent(percent)
        with self._sessions.begin() as session:
            row = self._row(session, name, version)
            if row.state == "active":
                raise RegistryError(f"{name}@{version} is active: it already gets all traffic")
            _refuse_failed_gate(row)
            self._require_active(session, name, "a canary")
            if row.state != "canary":
                self._clear_canary(session, name)
            return AdapterVersion.from_row(self._set(session, row, "canary", percent))

    def rollback(self, name: str) -> AdapterVersion:
        """Undo the last promotion; returns the version that is active again."""
        with self._sessions.begin() as session:
            current = self._require_active(session, name, "a rollback")
            previous = session.scalars(
                select(AdapterVersionRow)
                .where(
                    AdapterVersionRow.name == name,
                    AdapterVersionRow.state == "retired",
                    AdapterVersionRow.activated_at.is_not(None),
                )
                .order_by(AdapterVersionRow.activated_at.desc(), AdapterVersionRow.version.desc())
                .limit(1)
            ).first()
            if previous is None:
                raise RegistryError(
                    f"{name}: no earlier active version to roll back to "
                    f"(retire {name}@{current.version} to stop serving it)"
                )
            self._set(session, current, "retired")
            session.flush()  # the old active row leaves the one-active index first
            return AdapterVersion.from_row(self._set(session, previous, "active"))

    def retire(self, name: str, version: int) -> AdapterVersion:
        """Stop serving `version` (its files stay, for a later promote)."""
        with self._sessions.begin() as session:
            row = self._row(session, name, version)
            if row.state == "active":
                raise RegistryError(
                    f"{name}@{version} is active: promote another version or roll back first"
                )
            if row.state == "retired":
                return AdapterVersion.from_row(row)
            return AdapterVersion.from_row(self._set(session, row, "retired"))

    def _set(
        self, session: Session, row: AdapterVersionRow, state: str, percent: int | None = None
    ) -> AdapterVersionRow:
        now = self._clock()
        row.state, row.canary_percent, row.state_changed_at = state, percent, now
        if state == "active":
            row.activated_at = now
        session.flush()  # each transition meets the one-active/one-canary indexes in order
        return row

    def _clear_canary(self, session: Session, name: str) -> None:
        canary = session.scalar(
            select(AdapterVersionRow).where(
                AdapterVersionRow.name == name, AdapterVersionRow.state == "canary"
            )
        )
        if canary is not None:
            self._set(session, canary, "staged")

    def _active(self, session: Session, name: str) -> AdapterVersionRow | None:
        return session.scalar(
            select(AdapterVersionRow).where(
                AdapterVersionRow.name == name, AdapterVersionRow.state == "active"
            )
        )

    def _require_active(self, session: Session, name: str, what: str) -> AdapterVersionRow:
        current = self._active(session, name)
        if current is None:
            raise RegistryError(
                f"{name} has no active version, so {what} has nothing to act on: promote one"
            )
        return current

    @staticmethod
    def _row(session: Session, name: str, version: int) -> AdapterVersionRow:
        row = session.scalar(
            select(AdapterVersionRow).where(
                AdapterVersionRow.name == name, AdapterVersionRow.version == version
            )
        )
        if row is None:
            raise UnknownAdapter(f"no adapter {name}@{version}")
        return row
