"""`clinserve keys` end to end in a subprocess, as an operator runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from server.db.database import make_engine, session_factory
from server.db.keys import KeyStore
from server.db.pepper import load_pepper
from tests import db_fixtures

# Fixtures shared with the other test_db_* modules (see tests/db_fixtures.py).
database_url = db_fixtures.database_url


def keys(tmp_path: Path, url: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m cli.main keys ...` isolated from the developer's CLINSERVE_* settings."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CLINSERVE_")}
    options = ["--data-dir", str(tmp_path / "data")]
    if url is not None:
        options += ["--database-url", url]
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "keys", *args, *options],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,  # no stray .env from the repository
        timeout=60,
    )


def verify(tmp_path: Path, url: str, plaintext: str) -> bool:
    """Check a key the way the gateway will: same database, same pepper file."""
    engine = make_engine(url)
    try:
        store = KeyStore(session_factory(engine), load_pepper(tmp_path / "data"))
        return store.verify(plaintext) is not None
    finally:
        engine.dispose()


@pytest.fixture
def cli_url(database_url: str) -> str | None:
    """None for SQLite: the CLI must then find its default database in --data-dir."""
    return None if database_url.startswith("sqlite") else database_url


def test_create_list_revoke(tmp_path: Path, cli_url: str | None) -> None:
    url = cli_url or f"sqlite:///{tmp_path / 'data' / 'clinserve.db'}"
    created = keys(tmp_path, cli_url, "create", "--tenant", "st-marys", "--scopes",
                   "chat,embeddings", "--rpm", "60", "--description", "EMR bridge")  # fmt: skip
    assert created.returncode == 0, created.stderr
    lines = created.stdout.splitlines()
    assert len(lines) == 1  # the key, once, and nothing else on stdout
    plaintext = lines[0]
    public_id = plaintext.split("-")[1]
    assert plaintext.startswith(f"cs-{public_id}-")
    assert public_id in created.stderr and "st-marys" in created.stderr
    assert "chat,embeddings" in created.stderr and plaintext not in created.stderr
    assert verify(tmp_path, url, plaintext)

    secret = plaintext.split("-", 2)[2]
    listed = keys(tmp_path, cli_url, "list")
    assert listed.returncode == 0, listed.stderr
    assert public_id in listed.stdout and "active" in listed.stdout
    assert "EMR bridge" in listed.stdout
    assert secret not in listed.stdout + listed.stderr

    as_json = keys(tmp_path, cli_url, "list", "--json", "--tenant", "st-marys")
    assert as_json.returncode == 0, as_json.stderr
    (entry,) = json.loads(as_json.stdout)
    assert entry["id"] == public_id and entry["scopes"] == ["chat", "embeddings"]
    assert entry["rpm"] == 60 and entry["status"] == "active"
    assert not {"secret", "hash", "secret_hash", "key"} & set(entry)
    assert secret not in as_json.stdout
    assert json.loads(keys(tmp_path, cli_url, "list", "--json", "--tenant", "other").stdout) == []

    revoked = keys(tmp_path, cli_url, "revoke", public_id)
    assert revoked.returncode == 0, revoked.stderr
    assert f"revoked key {public_id}" in revoked.stderr
    assert not verify(tmp_path, url, plaintext)
    assert "revoked" in keys(tmp_path, cli_url, "list").stdout
    again = keys(tmp_path, cli_url, "revoke", public_id)
    assert again.returncode == 0 and "already revoked" in again.stderr


def test_expiry_date(tmp_path: Path, cli_url: str | None) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    created = keys(tmp_path, cli_url, "create", "--tenant", "t", "--scopes", "chat",
                   "--expires", tomorrow)  # fmt: skip
    assert created.returncode == 0, created.stderr
    (entry,) = json.loads(keys(tmp_path, cli_url, "list", "--json").stdout)
    assert entry["expires_at"] == f"{tomorrow}T00:00:00+00:00"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "--tenant", "t", "--scopes", "chat,root"], "unknown scope 'root'"),
        (["create", "--tenant", "t", "--scopes", "chat", "--expires", "2001-01-01"], "in the past"),
        (["create", "--tenant", "t", "--scopes", "chat", "--expires", "soon"], "not a date"),
        (["create", "--tenant", "t", "--scopes", "chat", "--rpm", "0"], "rpm must be a positive"),
        (["create", "--tenant", "bad name", "--scopes", "chat"], "invalid tenant name"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = keys(tmp_path, None, *args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_unknown_key_and_unreachable_database_exit_1(tmp_path: Path) -> None:
    unknown = keys(tmp_path, None, "revoke", "0123456789ab")
    assert unknown.returncode == 1 and "no API key with id" in unknown.stderr
    down = keys(tmp_path, "postgresql+psycopg://nobody@127.0.0.1:1/none", "list")
    assert down.returncode == 1 and "database error" in down.stderr
    assert len(down.stderr.strip().splitlines()) == 1 and "Traceback" not in down.stderr
    other = keys(tmp_path, "mysql://u@h/db", "list")
    assert other.returncode == 2 and "unsupported database" in other.stderr


def test_bad_input_creates_nothing(tmp_path: Path) -> None:
    assert keys(tmp_path, None, "create", "--tenant", "t", "--scopes", "nope").returncode == 2
    assert keys(tmp_path, None, "create", "--tenant", "t t", "--scopes", "chat").returncode == 2
    assert not (tmp_path / "data").exists()  # neither a database nor a pepper


def test_intake_mode_on_create_and_update(tmp_path: Path, cli_url: str | None) -> None:
    created = keys(tmp_path, cli_url, "create", "--tenant", "t", "--scopes", "chat",
                   "--intake-mode", "normalize")  # fmt: skip
    assert created.returncode == 0, created.stderr
    public_id = created.stdout.split("-")[1]
    (entry,) = json.loads(keys(tmp_path, cli_url, "list", "--json").stdout)
    assert entry["intake_mode"] == "normalize"
    assert "normalize" in keys(tmp_path, cli_url, "list").stdout

    updated = keys(tmp_path, cli_url, "update", public_id, "--intake-mode", "off")
    assert updated.returncode == 0 and "intake mode off" in updated.stderr
    assert json.loads(keys(tmp_path, cli_url, "list", "--json").stdout)[0]["intake_mode"] == "off"
    reset = keys(tmp_path, cli_url, "update", public_id, "--intake-mode", "default")
    assert reset.returncode == 0 and "deployment's default" in reset.stderr
    assert json.loads(keys(tmp_path, cli_url, "list", "--json").stdout)[0]["intake_mode"] is None

    bad = keys(tmp_path, cli_url, "update", public_id, "--intake-mode", "rewrite")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
    unknown = keys(tmp_path, cli_url, "update", "0123456789ab", "--intake-mode", "off")
    assert unknown.returncode == 1 and "no API key with id" in unknown.stderr


def test_the_cli_offers_the_modes_the_store_accepts() -> None:
    from server.db.keys import INTAKE_MODES
    from server.keys_cli import _INTAKE_MODES

    assert _INTAKE_MODES == INTAKE_MODES
