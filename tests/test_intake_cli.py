"""`clinserve intake` on stdin and on a JSONL file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def clinserve(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "intake", *args],
        input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip


def test_one_message_on_stdin() -> None:
    done = clinserve(stdin="My chest is tight and my left arm is numb.")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["language"] == "en"
    assert any(flag["id"] == "cardiac_chest_pain" for flag in result["red_flags"])


def test_empty_stdin_is_a_usage_error() -> None:
    done = clinserve(stdin="  \n")
    assert done.returncode == 2 and "no text" in done.stderr


def test_jsonl_keeps_input_order_and_reports_bad_lines(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    lines = [
        {"id": 1, "body": "没发烧，就是咳嗽"},
        {"id": 2, "other": "no body here"},
        {"id": 3, "body": "headach since yesterday"},
    ]
    source.write_text("\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n")
    done = clinserve("--jsonl", str(source), "--field", "body", "--lang", "auto")
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(results) == 3
    assert results[0]["language"] == "zh"
    assert "error" in results[1] and "line 2" in results[1]["error"]
    assert results[2]["language"] == "en"


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    done = clinserve("--jsonl", str(tmp_path / "absent.jsonl"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
