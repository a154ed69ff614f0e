"""`clinserve audit verify|export|purge|retention` on SQLite and PostgreSQL, as an operator
runs them: the same data dir (server secret) and database the gateway would use."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from cli.main import main
from server.audit.chain import chain_key
from server.audit.store import AuditStore
from server.db import migrate
from server.db.database import make_engine, session_factory
from server.db.pepper import load_pepper
from tests.db_fixtures import database_url
from tests.test_audit_store import record, tenant

__all__ = ["database_url"]


class Cli:
    """`clinserve audit ...` in-process against one data dir and database, plus direct access
    to that database (seeding rows, tampering with them) under the same server secret."""

    def __init__(self, data_dir: Path, url: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.options = ["--data-dir", str(data_dir), "--database-url", url]
        self.capsys = capsys
        self.engine = make_engine(url)
        migrate.upgrade(self.engine)
        self.sessions: sessionmaker[Session] = session_factory(self.engine)
        self.store = AuditStore(self.sessions, chain_key(load_pepper(data_dir)))

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(["audit", *args, *self.options])
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err

    def seed(self) -> tuple[int, int]:
        """St Mary's (retaining texts for 30 days): rows 1, 3, 5; General: rows 2, 4."""
        marys, general = tenant(self.sessions, "st-marys"), tenant(self.sessions, "general")
        code, _, err = self("retention", "--tenant", "st-marys", "--days", "30")
        assert code == 0 and "30 days" in err
        self.store.append([record(n, marys if n % 2 else general) for n in range(1, 6)])
        return marys, general


@pytest.fixture
def cli(
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Cli]:
    for name in [name for name in os.environ if name.startswith("CLINSERVE_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env from the repository
    runner = Cli(tmp_path / "data", database_url, capsys)
    try:
        yield runner
    finally:
        runner.engine.dispose()


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


def test_verify_exits_0_when_intact_and_1_with_the_first_broken_row(cli: Cli) -> None:
    assert cli("verify")[:2] == (0, '{"intact": true, "rows": 0, "problem": null, "seq": null}\n')
    cli.seed()
    code, out, _ = cli("verify")
    assert code == 0 and json.loads(out)["rows"] == 5
    with cli.engine.begin() as connection:
        connection.execute(text("UPDATE audit_events SET status = 204 WHERE seq = 2"))
    code, out, _ = cli("verify")
    verdict = json.loads(out)
    assert code == 1 and verdict["intact"] is False and verdict["seq"] == 2
    assert verdict["rows"] == 1 and "modified" in verdict["problem"]


def test_export_is_json_lines_without_text_unless_asked(cli: Cli, tmp_path: Path) -> None:
    marys, _ = cli.seed()
    code, out, _ = cli("export")
    everything = lines(out)
    assert code == 0 and [row["seq"] for row in everything] == [1, 2, 3, 4, 5]
    assert "prompt 1" not in out and all("content" not in row for row in everything)
    assert everything[0]["prompt_sha256"] == "a" * 64 and everything[0]["row_hash"]

    code, out, _ = cli("export", "--tenant", "st-marys", "--with-content")
    mine = lines(out)
    assert code == 0 and [row["seq"] for row in mine] == [1, 3, 5]
    assert {row["tenant_id"] for row in mine} == {marys}
    assert mine[0]["content"] == {"prompt": "prompt 1", "response": "answer 1"}

    code, out, _ = cli("export", "--tenant", "general", "--with-content")
    assert code == 0 and [row["content"] for row in lines(out)] == [None, None]

    since = datetime(2026, 11, 22, 9, 0, 3, tzinfo=UTC).isoformat()
    out_file = tmp_path / "audit.jsonl"
    code, out, _ = cli("export", "--since", since, "--until", "2026-11-23", "--out", str(out_file))
    assert code == 0 and out == ""
    assert [row["seq"] for row in lines(out_file.read_text("utf-8"))] == [3, 4, 5]


def test_purge_deletes_expired_texts_only_and_the_chain_still_verifies(cli: Cli) -> None:
    cli.seed()
    code, out, _ = cli("purge")
    assert (code, json.loads(out)) == (0, {"purged": 0}), "nothing has expired yet"
    with cli.engine.begin() as connection:  # the texts of row 1 reach their expiry
        connection.execute(
            text("UPDATE audit_content SET expires_at = :past WHERE event_id = 1"),
            {"past": datetime.now(UTC) - timedelta(seconds=1)},
        )
    code, out, _ = cli("purge")
    assert (code, json.loads(out)) == (0, {"purged": 1})
    code, out, _ = cli("retention", "--tenant", "st-marys", "--off")
    assert code == 0
    code, out, _ = cli("purge")
    assert (code, json.loads(out)) == (0, {"purged": 2}), "retention off: the rest goes too"
    assert cli("verify")[0] == 0


@pytest.mark.parametrize(
    "args",
    [
        ("retention", "--tenant", "nobody", "--days", "7"),
        ("retention", "--tenant", "st-marys", "--days", "0"),
        ("export", "--tenant", "nobody"),
        ("export", "--since", "last tuesday"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli: Cli, args: tuple[str, ...]) -> None:
    tenant(cli.sessions, "st-marys")
    code, out, err = cli(*args)
    assert code == 2 and out == ""
    assert err.startswith(f"clinserve audit {args[0]}: error:") and err.count("\n") == 1
