"""`clinserve feedback export` end to end in a subprocess, as an operator runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.main import main
from server.db import migrate
from server.db.database import make_engine, session_factory
from server.feedback.export import FORMATS
from server.feedback.request import FeedbackRequest
from server.feedback.store import FeedbackStore
from server.feedback_cli import FORMATS as CLI_FORMATS
from tests import db_fixtures
from tests.test_feedback_store import add_completion, add_tenant

# Fixtures shared with the other DB test modules (see tests/db_fixtures.py).
database_url = db_fixtures.database_url

QUESTION = [{"role": "user", "content": "Apixaban dose in AF, 82 years, 58 kg?"}]


def feedback(tmp_path: Path, url: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m cli.main feedback ...` isolated from the developer's CLINSERVE_* settings."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CLINSERVE_")}
    options = ["--data-dir", str(tmp_path / "data")]
    if url is not None:
        options += ["--database-url", url]
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "feedback", *args, *options],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        cwd=tmp_path,  # no stray .env from the repository
        timeout=60,
    )


@pytest.fixture
def cli_url(database_url: str) -> str | None:
    """None for SQLite: the CLI must then find its default database in --data-dir."""
    return None if database_url.startswith("sqlite") else database_url


@pytest.fixture
def seeded(database_url: str) -> Iterator[None]:
    """St Mary's: one feedback with retained texts, one with none; General: one rating only."""
    engine = make_engine(database_url)
    try:
        migrate.upgrade(engine)
        sessions = session_factory(engine)
        store = FeedbackStore(sessions)
        a, b = add_tenant(sessions, "st-marys"), add_tenant(sessions, "general")
        add_completion(sessions, a, "c-1", prompt=QUESTION, response="5 mg twice daily.")
        add_completion(sessions, a, "c-2")
        add_completion(sessions, b, "c-3", prompt=QUESTION, response="2.5 mg twice daily.")
        fix = "2.5 mg twice daily: two of age ≥ 80, weight ≤ 60 kg."
        for tenant, completion_id, fields in (
            (a, "c-1", {"rating": 1, "correction": fix}),
            (a, "c-2", {"rating": 2, "correction": fix}),
            (b, "c-3", {"rating": 5, "dimensions": {"safety": 5}}),
        ):
            request = FeedbackRequest.model_validate({"completion_id": completion_id, **fields})
            store.record(tenant, None, None, request)
        yield
    finally:
        engine.dispose()


@pytest.mark.usefixtures("seeded")
def test_export_to_stdout_and_file(tmp_path: Path, cli_url: str | None) -> None:
    sft = feedback(tmp_path, cli_url, "export", "--format", "sft")
    assert sft.returncode == 0, sft.stderr
    (line,) = [json.loads(text) for text in sft.stdout.splitlines()]
    assert line["messages"][-1]["content"].startswith("2.5 mg twice daily: two of age ≥ 80")
    assert line["meta"]["text_source"] == "retained" and line["meta"]["completion_id"] == "c-1"
    assert "wrote 1 sft lines to stdout" in sft.stderr
    assert "skipped 1 without texts, 1 without a correction" in sft.stderr
    assert len(sft.stderr.splitlines()) == 1

    out = tmp_path / "rubric.jsonl"
    rubric = feedback(tmp_path, cli_url, "export", "--format", "rubric", "--out", str(out),
                      "--tenant", "general", "--since", "2000-01-01")  # fmt: skip
    assert rubric.returncode == 0, rubric.stderr
    assert rubric.stdout == "" and f"wrote 1 rubric lines to {out}" in rubric.stderr
    (row,) = [json.loads(text) for text in out.read_text(encoding="utf-8").splitlines()]
    assert row["rating"] == 5 and row["dimensions"]["safety"] == 5
    assert row["meta"]["tenant"] == "general"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []

    later = feedback(tmp_path, cli_url, "export", "--format", "preference", "--since", "2999-01-01")
    assert later.returncode == 0 and later.stdout == "", later.stderr
    assert "wrote 0 preference lines" in later.stderr


@pytest.mark.usefixtures("seeded")
def test_operator_errors_are_one_line(tmp_path: Path, cli_url: str | None) -> None:
    unknown = feedback(tmp_path, cli_url, "export", "--format", "sft", "--tenant", "nobody")
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert unknown.stderr.strip() == ("clinserve feedback export: error: no tenant named 'nobody'")
    missing_dir = tmp_path / "no" / "such" / "dir" / "x.jsonl"
    unwritable = feedback(tmp_path, cli_url, "export", "--format", "sft", "--out", str(missing_dir))
    assert unwritable.returncode == 1
    assert unwritable.stderr.startswith("clinserve feedback export: error: ")
    assert len(unwritable.stderr.splitlines()) == 1


def test_bad_input_exits_2_before_any_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in [name for name in os.environ if name.startswith("CLINSERVE_")]:
        monkeypatch.delenv(name)
    data = ["--data-dir", str(tmp_path / "data")]
    assert main(["feedback", "export", "--format", "sft", "--since", "yesterday", *data]) == 2
    assert capsys.readouterr().err == (
        "clinserve feedback export: error: --since 'yesterday' is not a date (YYYY-MM-DD) or ISO "
        "datetime\n"
    )
    url = ["--database-url", "mysql://u@h/db"]
    assert main(["feedback", "export", "--format", "sft", *url, *data]) == 2
    assert "unsupported database 'mysql'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["feedback", "export", "--format", "csv", *data])
    assert exited.value.code == 2
    assert "invalid choice: 'csv'" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def test_the_cli_offers_every_export_format() -> None:
    assert CLI_FORMATS == FORMATS
