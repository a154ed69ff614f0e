"""API keys: create, list, revoke, verify. Only a keyed hash of each key is ever stored.

A key reads `cs-<public_id>-<secret>`: `public_id` (12 hex characters) names the key in
listings and lets verification find its row with one indexed lookup; `secret` is 43
url-safe characters from `secrets` (256 bits). The database keeps
HMAC-SHA256(pepper, whole key) in hex, so a copy of the database cannot be used to check
guesses without the pepper (see `server.db.pepper`), and hashing the whole key binds the
secret to its public id. Hashes are compared with `hmac.compare_digest`.

`verify` is what the gateway's auth will call on every request: it never raises on what a
client sent (malformed, unknown, revoked, expired all give None); only database failures
propagate.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import cast, get_args

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, contains_eager, joinedload, sessionmaker

from server.db.models import ApiKey, Tenant, utc_now
from server.settings import IntakeMode

SCOPES: tuple[str, ...] = ("chat", "embeddings", "intake", "feedback", "admin", "adapters", "cds")
"""Every scope a key can hold; the gateway maps each route to one of them. `cds`: the CDS
Hooks service (an EMR calling with a key rather than its signed JWT)."""

INTAKE_MODES: tuple[IntakeMode, ...] = get_args(IntakeMode)

KEY_PREFIX = "cs"
PUBLIC_ID_BYTES = 6
SECRET_BYTES = 32
_KEY = re.compile(r"cs-([0-9a-f]{12})-([A-Za-z0-9_-]{32,128})")
_TENANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_DUMMY_HASH = "0" * 64
_ID_ATTEMPTS = 5


class KeyManagementError(Exception):
    """Base of the errors an operator can act on (the CLI prints them as one line)."""


class InvalidKeySpec(KeyManagementError, ValueError):
    """A create request with a bad tenant, scope, limit or expiry."""


class UnknownKey(KeyManagementError, LookupError):
    """No key has that public id."""


@dataclass(frozen=True)
class KeyRecord:
    """What the rest of the gateway may know about a key: everything but its hash.

    `key_id` and `tenant_id` are the row ids, for rows (audit, usage) that point at them.
    """

    key_id: int
    public_id: str
    tenant_id: int
    tenant: str
    scopes: frozenset[str]
    created_at: datetime
    rpm: int | None = None
    tpm: int | None = None
    max_concurrent: int | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    description: str | None = None
    intake_mode: IntakeMode | None = None  # None: the deployment's default

    def status(self, now: datetime) -> str:
        """`revoked`, `expired` or `active` at `now`."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def allows(self, scope: str) -> bool:
        return scope in self.scopes

    @classmethod
    def from_row(cls, row: ApiKey) -> KeyRecord:
        return cls(
            key_id=row.id,
            public_id=row.public_id,
            tenant_id=row.tenant_id,
            tenant=row.tenant.name,
            scopes=frozenset(row.scopes.split(",")),
            created_at=row.created_at,
            rpm=row.rpm,
            tpm=row.tpm,
            max_concurrent=row.max_concurrent,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            last_used_at=row.last_used_at,
            description=row.description,
            intake_mode=cast("IntakeMode | None", row.intake_mode),
        )


def parse_scopes(scopes: str | Iterable[str]) -> frozenset[str]:
    """`"chat,embeddings"` or an iterable of names -> a validated, non-empty scope set."""
    names = scopes.split(",") if isinstance(scopes, str) else list(scopes)
    parsed = frozenset(name.strip().lower() for name in names if name.strip())
    unknown = sorted(parsed - set(SCOPES))
    if unknown:
        raise InvalidKeySpec(
            f"unknown scope {', '.join(map(repr, unknown))}; choose from {', '.join(SCOPES)}"
        )
    if not parsed:
        raise InvalidKeySpec(f"a key needs at least one scope: {', '.join(SCOPES)}")
    return parsed


def check_key_spec(
    tenant: str,
    scopes: str | Iterable[str],
    rpm: int | None = None,
    tpm: int | None = None,
    max_concurrent: int | None = None,
    description: str | None = None,
    intake_mode: str | None = None,
) -> frozenset[str]:
    """Validate a key request without a database (the CLI checks before creating one)."""
    _check_tenant_name(tenant)
    scope_set = parse_scopes(scopes)
    for name, limit in (("rpm", rpm), ("tpm", tpm), ("max_concurrent", max_concurrent)):
        if limit is not None and limit < 1:
            raise InvalidKeySpec(f"{name} must be a positive integer, got {limit}")
    if description is not None and len(description) > 500:
        raise InvalidKeySpec("description is longer than 500 characters")
    check_intake_mode(intake_mode)
    return scope_set


def check_intake_mode(mode: str | None) -> IntakeMode | None:
    """`mode` as a key's intake default (None keeps the deployment's)."""
    if mode is not None and mode not in INTAKE_MODES:
        raise InvalidKeySpec(f"unknown intake mode {mode!r}; choose from {', '.join(INTAKE_MODES)}")
    return mode


def hash_key(pepper: bytes, plaintext: str) -> str:
    """HMAC-SHA256 of the whole key under the pepper, as 64 hex characters."""
    return hmac.new(pepper, plaintext.encode("ascii"), hashlib.sha256).hexdigest()


class KeyStore:
    """API-key operations over a session factory, with the pepper and a clock injected.

    The clock exists so expiry can be tested without waiting; production uses UTC now.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        pepper: bytes,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._sessions = sessions
        self._pepper = pepper
        self._clock = clock

    def create_tenant_if_missing(self, name: str) -> int:
        """The tenant's id, creating the tenant on first use."""
        _check_tenant_name(name)
        try:
            with self._sessions.begin() as session:
                return self._tenant_id(session, name)
        except IntegrityError:  # created concurrently by another process: it exists now
            with self._sessions.begin() as session:
                return self._tenant_id(session, name)

    def create_key(
        self,
        tenant: str,
        scopes: str | Iterable[str],
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        max_concurrent: int | None = None,
        expires_at: datetime | None = None,
        description: str | None = None,
        intake_mode: str | None = None,
    ) -> tuple[KeyRecord, str]:
        """A new key for `tenant` (created if missing): its record and the only plaintext copy.

        The plaintext is not recoverable afterwards; the caller shows it once.
        """
        scope_set = check_key_spec(
            tenant, scopes, rpm, tpm, max_concurrent, description, intake_mode
        )
        if expires_at is not None:
            if expires_at.tzinfo is None or expires_at.utcoffset() is None:
                raise InvalidKeySpec("expires_at must be timezone-aware")
            if expires_at <= self._clock():
                raise InvalidKeySpec(f"expiry {expires_at.isoformat()} is not in the future")
        for _ in range(_ID_ATTEMPTS):
            public_id = secrets.token_hex(PUBLIC_ID_BYTES)
            plaintext = f"{KEY_PREFIX}-{public_id}-{secrets.token_urlsafe(SECRET_BYTES)}"
            try:
                with self._sessions.begin() as session:
                    row = ApiKey(
                        public_id=public_id,
                        tenant_id=self._tenant_id(session, tenant),
                        secret_hash=hash_key(self._pepper, plaintext),
                        scopes=",".join(sorted(scope_set)),
                        rpm=rpm,
                        tpm=tpm,
                        max_concurrent=max_concurrent,
                        expires_at=expires_at,
                        created_at=self._clock(),
                        description=description,
                        intake_mode=intake_mode,
                    )
                    session.add(row)
                    session.flush()
                    record = KeyRecord.from_row(row)
            except IntegrityError:
                continue  # a public id collision (or a concurrent tenant insert): try again
            return record, plaintext
        raise KeyManagementError(f"could not allocate a unique key id in {_ID_ATTEMPTS} tries")

    def list_keys(self, tenant: str | None = None) -> list[KeyRecord]:
        """Every key (of one tenant if given), oldest first; revoked and expired included."""
        query = select(ApiKey).join(ApiKey.tenant).options(contains_eager(ApiKey.tenant))
        if tenant is not None:
            query = query.where(Tenant.name == tenant)
        with self._sessions() as session:
            rows = session.scalars(query.order_by(ApiKey.created_at, ApiKey.id)).all()
            return [KeyRecord.from_row(row) for row in rows]

    def get_key(self, public_id: str) -> KeyRecord:
        with self._sessions() as session:
            return KeyRecord.from_row(self._row(session, public_id))

    def revoke_key(self, public_id: str) -> KeyRecord:
        """Revoke at once; revoking a revoked key keeps its first revocation time."""
        with self._sessions.begin() as session:
            row = self._row(session, public_id)
            if row.revoked_at is None:
                row.revoked_at = self._clock()
            return KeyRecord.from_row(row)

    def set_intake_mode(self, public_id: str, mode: str | None) -> KeyRecord:
        """Change the key's default intake mode (None: back to the deployment's). Gateways
        see it when their cached verdict for the key expires (`auth.cache_ttl_s`)."""
        checked = check_intake_mode(mode)
        with self._sessions.begin() as session:
            row = self._row(session, public_id)
            row.intake_mode = checked
            return KeyRecord.from_row(row)

    def fingerprint(self, plaintext: str) -> str | None:
        """The stored-hash form of a well-formed key (None if malformed): a cache key that
        is safe to hold in memory, unlike the plaintext."""
        if _KEY.fullmatch(plaintext) is None:
            return None
        return hash_key(self._pepper, plaintext)

    def has_keys(self) -> bool:
        """Whether any key was ever created (revoked ones included)."""
        with self._sessions() as session:
            return session.scalar(select(ApiKey.id).limit(1)) is not None

    def verify(self, plaintext: object) -> KeyRecord | None:
        """The key's record if `plaintext` is a valid, unrevoked, unexpired key; else None."""
        if not isinstance(plaintext, str):
            return None
        match = _KEY.fullmatch(plaintext)
        if match is None:
            return None
        candidate = hash_key(self._pepper, plaintext)
        with self._sessions() as session:
            row = session.scalar(
                select(ApiKey)
                .where(ApiKey.public_id == match.group(1))
                .options(joinedload(ApiKey.tenant))  # one round trip on the hot path
            )
            # Compare even for an unknown id so both paths cost about the same.
            stored = row.secret_hash if row is not None else _DUMMY_HASH
            if not hmac.compare_digest(candidate, stored) or row is None:
                return None
            record = KeyRecord.from_row(row)
        return record if record.status(self._clock()) == "active" else None

    def mark_used(self, public_id: str) -> None:
        """Record that a key was just used (for `keys list`; callers may throttle this)."""
        with self._sessions.begin() as session:
            session.execute(
                update(ApiKey)
                .where(ApiKey.public_id == public_id)
                .values(last_used_at=self._clock())
            )

    @staticmethod
    def _row(session: Session, public_id: str) -> ApiKey:
        row = session.scalar(
            select(ApiKey).where(ApiKey.public_id == public_id).options(joinedload(ApiKey.tenant))
        )
        if row is None:
            raise UnknownKey(f"no API key with id {public_id!r}")
        return row

    def _tenant_id(self, session: Session, name: str) -> int:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.name == name))
        if tenant_id is None:
            tenant = Tenant(name=name, created_at=self._clock())
            session.add(tenant)
            session.flush()
            tenant_id = tenant.id
        return tenant_id


def _check_tenant_name(name: str) -> None:
    if not _TENANT_NAME.fullmatch(name):
        raise InvalidKeySpec(
            f"invalid tenant name {name!r}: 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
