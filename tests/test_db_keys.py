"""The API-key store on a real database: create, verify, revoke, expiry, hashing, pepper."""

from __future__ import annotations

import hmac
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from server.db.keys import SCOPES, InvalidKeySpec, KeyStore, UnknownKey, hash_key, parse_scopes
from server.db.models import ApiKey, Tenant
from server.db.pepper import PepperError, default_pepper_file, load_pepper
from tests import db_fixtures

# Fixtures shared with the other test_db_* modules (see tests/db_fixtures.py).
database_url = db_fixtures.database_url
engine = db_fixtures.engine
migrated = db_fixtures.migrated
sessions = db_fixtures.sessions
store = db_fixtures.store


class Clock:
    """A settable UTC clock, so expiry is tested without waiting."""

    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_models_round_trip_with_aware_utc_times(sessions: sessionmaker[Session]) -> None:
    # A non-UTC offset on the way in; UTC (same instant) on the way out.
    created = datetime(2030, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))
    with sessions.begin() as session:
        tenant = Tenant(name="st-marys", created_at=created)
        tenant.api_keys.append(
            ApiKey(
                public_id="0123456789ab",
                secret_hash="a" * 64,
                scopes="chat,intake",
                rpm=60,
                tpm=None,
                max_concurrent=4,
                expires_at=created + timedelta(days=30),
                created_at=created,
                description="ward 3",
            )
        )
        session.add(tenant)
    with sessions() as session:
        row = session.scalars(select(ApiKey)).one()
        assert row.tenant.name == "st-marys"
        assert (row.rpm, row.tpm, row.max_concurrent) == (60, None, 4)
        assert row.created_at == created and row.created_at.tzinfo is UTC
        assert row.expires_at == created + timedelta(days=30)
        assert row.expires_at is not None and row.expires_at.tzinfo is UTC
        assert row.revoked_at is None and row.last_used_at is None
        assert row.description == "ward 3"


def test_naive_datetimes_are_refused(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(Exception, match="naive datetime"), sessions.begin() as session:
        session.add(Tenant(name="t", created_at=datetime(2030, 1, 1)))


def test_create_then_verify(store: KeyStore) -> None:
    record, plaintext = store.create_key(
        "st-marys", "chat,embeddings", rpm=60, tpm=10_000, max_concurrent=2, description="EMR"
    )
    prefix, public_id, secret = plaintext.split("-", 2)
    assert prefix == "cs" and public_id == record.public_id and len(secret) >= 32
    assert record.scopes == {"chat", "embeddings"}
    assert (record.rpm, record.tpm, record.max_concurrent) == (60, 10_000, 2)
    verified = store.verify(plaintext)
    assert verified is not None
    assert verified == record and verified.tenant == "st-marys"
    assert verified.tenant_id == store.create_tenant_if_missing("st-marys")
    assert verified.allows("chat") and not verified.allows("admin")
    assert verified.created_at.tzinfo is UTC


def test_keys_are_unique_and_tenants_reused(store: KeyStore) -> None:
    first, key1 = store.create_key("a", "chat")
    second, key2 = store.create_key("a", "admin")
    third, _ = store.create_key("b", "intake")
    assert key1 != key2 and first.public_id != second.public_id
    assert store.create_tenant_if_missing("a") == store.create_tenant_if_missing("a")
    assert [record.public_id for record in store.list_keys()] == [
        first.public_id,
        second.public_id,
        third.public_id,
    ]
    assert [record.public_id for record in store.list_keys("a")] == [
        first.public_id,
        second.public_id,
    ]
    assert store.list_keys("nobody") == []


def test_wrong_secret_and_malformed_keys_are_refused(store: KeyStore) -> None:
    record, plaintext = store.create_key("t", "chat")
    last = plaintext[-1]
    tampered = plaintext[:-1] + ("A" if last != "A" else "B")
    unknown_id = f"cs-{'f' * 12 if record.public_id != 'f' * 12 else 'e' * 12}-{plaintext[16:]}"
    for candidate in [
        tampered,
        unknown_id,
        plaintext[:-20],  # secret too short
        plaintext + " ",
        "",
        "cs--",
        "Bearer " + plaintext,
        plaintext.replace("cs-", "sk-", 1),
        "cs-" + record.public_id.upper() + plaintext[15:],
        "cs-" + record.public_id + "-" + "é" * 40,
        "x" * 10_000,
        None,
        42,
    ]:
        assert store.verify(candidate) is None, candidate
    assert store.verify(plaintext) is not None


def test_revoke(store: KeyStore) -> None:
    record, plaintext = store.create_key("t", "chat")
    other, other_plaintext = store.create_key("t", "chat")
    revoked = store.revoke_key(record.public_id)
    assert revoked.revoked_at is not None and revoked.status(revoked.revoked_at) == "revoked"
    assert store.verify(plaintext) is None
    assert store.verify(other_plaintext) is not None
    again = store.revoke_key(record.public_id)
    assert again.revoked_at == revoked.revoked_at  # the first revocation time is kept
    with pytest.raises(UnknownKey, match="no API key"):
        store.revoke_key("000000000000")


def test_expiry(sessions: sessionmaker[Session]) -> None:
    clock = Clock()
    store = KeyStore(sessions, db_fixtures.PEPPER, clock=clock)
    record, plaintext = store.create_key("t", "chat", expires_at=clock.now + timedelta(hours=1))
    assert record.expires_at == clock.now + timedelta(hours=1)
    assert store.verify(plaintext) is not None
    clock.now += timedelta(hours=1)
    assert store.verify(plaintext) is None
    assert store.list_keys()[0].status(clock.now) == "expired"
    with pytest.raises(InvalidKeySpec, match="not in the future"):
        store.create_key("t", "chat", expires_at=clock.now - timedelta(seconds=1))
    with pytest.raises(InvalidKeySpec, match="timezone-aware"):
        store.create_key("t", "chat", expires_at=datetime(2040, 1, 1))


def test_invalid_specs_are_refused(store: KeyStore) -> None:
    with pytest.raises(InvalidKeySpec, match="unknown scope 'chatt'"):
        store.create_key("t", "chatt,admin")
    with pytest.raises(InvalidKeySpec, match="at least one scope"):
        store.create_key("t", " , ")
    with pytest.raises(InvalidKeySpec, match="rpm must be a positive"):
        store.create_key("t", "chat", rpm=0)
    with pytest.raises(InvalidKeySpec, match="invalid tenant name"):
        store.create_key("", "chat")
    with pytest.raises(InvalidKeySpec, match="invalid tenant name"):
        store.create_key("has space", "chat")
    assert store.list_keys() == []
    assert parse_scopes(" Chat , admin,chat") == {"chat", "admin"}
    assert parse_scopes(SCOPES) == set(SCOPES)


def test_intake_mode_is_kept_changed_and_checked(store: KeyStore) -> None:
    record, plaintext = store.create_key("t", "chat", intake_mode="normalize")
    assert record.intake_mode == "normalize"
    verified = store.verify(plaintext)
    assert verified is not None and verified.intake_mode == "normalize"
    assert store.set_intake_mode(record.public_id, None).intake_mode is None
    assert store.get_key(record.public_id).intake_mode is None
    with pytest.raises(InvalidKeySpec, match="unknown intake mode 'rewrite'"):
        store.set_intake_mode(record.public_id, "rewrite")
    with pytest.raises(InvalidKeySpec, match="unknown intake mode"):
        store.create_key("t", "chat", intake_mode="")
    with pytest.raises(UnknownKey):
        store.set_intake_mode("000000000000", "off")


def test_the_database_refuses_an_unknown_intake_mode(
    store: KeyStore, sessions: sessionmaker[Session]
) -> None:
    record, _ = store.create_key("t", "chat")
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.execute(
            update(ApiKey).where(ApiKey.id == record.key_id).values(intake_mode="rewrite")
        )


def test_verification_uses_a_constant_time_compare(
    store: KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, plaintext = store.create_key("t", "chat")
    calls: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert store.verify(plaintext) is not None
    assert calls == [(hash_key(db_fixtures.PEPPER, plaintext),) * 2]
    calls.clear()
    assert store.verify("cs-000000000000-" + "a" * 43) is None
    assert len(calls) == 1  # unknown ids are compared too, so they cost the same


def test_only_a_keyed_hash_is_stored(
    store: KeyStore, migrated: Engine, database_url: str, tmp_path: Path
) -> None:
    _, plaintext = store.create_key("t", "chat", description="find me")
    secret = plaintext.split("-", 2)[2]
    with migrated.connect() as connection:
        rows = connection.execute(text("SELECT * FROM api_keys")).all()
    dumped = repr(rows)
    assert "find me" in dumped
    assert secret not in dumped and plaintext not in dumped
    assert rows[0].secret_hash == hash_key(db_fixtures.PEPPER, plaintext)
    assert rows[0].secret_hash != hash_key(b"q" * 32, plaintext)  # the pepper matters
    if database_url.startswith("sqlite"):
        # The raw bytes: the WAL while connections are open, the main file after checkpoint.
        for phase in ("open", "closed"):
            contents = [path.read_bytes() for path in (tmp_path / "data").glob("clinserve.db*")]
            assert any(b"find me" in content for content in contents), phase  # the scan sees rows
            assert not any(secret.encode() in content for content in contents), phase
            migrated.dispose()


def test_last_used_is_recorded(store: KeyStore) -> None:
    record, _ = store.create_key("t", "chat")
    store.mark_used(record.public_id)
    used = store.get_key(record.public_id).last_used_at
    assert used is not None and used.tzinfo is UTC


def test_pepper_file_is_created_private_and_reused(tmp_path: Path) -> None:
    pepper = load_pepper(tmp_path)
    path = default_pepper_file(tmp_path)
    assert len(pepper) == 32 and path.read_bytes() == pepper
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_pepper(tmp_path) == pepper
    assert list(path.parent.iterdir()) == [path]  # no temporary files left behind


def test_pepper_setting_and_file_take_precedence(tmp_path: Path) -> None:
    assert load_pepper(tmp_path, "s" * 40) == b"s" * 40
    with pytest.raises(PepperError, match="at least 32"):
        load_pepper(tmp_path, "short")
    mounted = tmp_path / "mounted"
    with pytest.raises(PepperError, match="cannot read"):
        load_pepper(tmp_path, None, mounted)
    mounted.write_bytes(b"m" * 32)
    assert load_pepper(tmp_path, None, mounted) == b"m" * 32
    mounted.write_bytes(b"m" * 8)
    with pytest.raises(PepperError, match="fewer than 32"):
        load_pepper(tmp_path, None, mounted)
    assert not default_pepper_file(tmp_path).exists()
