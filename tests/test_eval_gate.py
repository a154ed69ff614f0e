"""The adapter evaluation gate: `clinserve eval gate` compares a candidate with a reference on
the same items, and `clinserve adapters publish --eval-gate FILE` stages, evaluates and then
keeps or retires the new version, against a fake endpoint with known answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from tests.adapter_fixtures import lora_dir, tiny_base
from tests.fakes import ExamBehaviour, ServerThread, fake_exam_app
from tests.test_adapters_cli import adapters, one_line_error
from tests.test_eval_runs import write_dataset

__all__ = ["lora_dir", "tiny_base"]  # fixtures, re-exported for pytest

STYLES = {"tiny": "half", "med@1": "oracle", "med@2": "first", "med@3": "oracle"}


@pytest.fixture
def gate_config(tmp_path: Path) -> Iterator[Path]:
    """A gate config pointing at a fake endpoint where the base model knows half the answers,
    med@1 and med@3 all of them, and med@2 always says the first option."""
    answers = write_dataset(tmp_path / "set.jsonl")
    with ServerThread(fake_exam_app(ExamBehaviour(answers, STYLES))) as server:
        config = tmp_path / "gate.yaml"
        config.write_text(
            f"base_url: {server.url}/v1\n"
            "api_key: ${GATE_TEST_KEY:-sk-gate}\n"
            "datasets: [set.jsonl]\n"  # relative to the config's folder
            "limit: 6\n"
            "seed: 3\n"
            "max_drop_points: 10\n"
            f"out: {tmp_path / 'gate-runs'}\n"
            "ready_timeout_s: 2\n"
        )
        yield config


def gate(
    config: Path, candidate: str, reference: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, Any] | None, str]:
    code = main(["eval", "gate", "--config", str(config), "--candidate", candidate,
                 "--reference", reference])  # fmt: skip
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out else None), captured.err


def test_the_gate_passes_a_better_candidate_and_refuses_a_worse_one(
    gate_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, verdict, _ = gate(gate_config, "med@1", "tiny", capsys)
    assert code == 0 and verdict is not None and verdict["passed"] is True
    assert verdict["candidate"]["accuracy"] == 1.0 and verdict["drop_points"] < 0
    low, high = verdict["drop_ci95"]
    assert low <= verdict["drop_points"] <= high

    code, verdict, _ = gate(gate_config, "med@2", "med@1", capsys)
    assert code == 3 and verdict is not None and verdict["passed"] is False
    assert verdict["drop_points"] > 10 and "allowed drop 10" in verdict["reason"]


def test_the_gate_refuses_to_judge_what_it_cannot_evaluate(
    gate_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, verdict, err = gate(gate_config, "med@9", "med@1", capsys)
    assert code == 2 and verdict is None
    assert "med@9 was not served" in err and "within 2 s" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("base_url: http://x/v1\ndatasets: [set.jsonl]\nmax_drop: 2\n")
    code, _, err = gate(bad, "med@1", "tiny", capsys)
    assert code == 2 and "max_drop" in err and "unknown setting" in err


def test_publish_with_a_gate_config_stages_evaluates_and_keeps_or_retires(
    tmp_path: Path, tiny_base: Path, lora_dir: Path, gate_config: Path
) -> None:
    first = adapters(tmp_path, tiny_base, "publish", str(lora_dir), "--name", "med",
                     "--eval-gate", str(gate_config))  # fmt: skip
    assert first.returncode == 0, first.stderr
    version = json.loads(first.stdout)
    assert (version["version"], version["state"]) == (1, "staged")
    evaluation = version["manifest"]["evaluation"]
    assert evaluation["gate_passed"] == 1.0 and evaluation["accuracy"] == 1.0
    assert evaluation["medqa_accuracy"] == 1.0 and evaluation["gate_reference_accuracy"] < 1.0
    assert adapters(tmp_path, tiny_base, "promote", "med", "1").returncode == 0

    worse = adapters(tmp_path, tiny_base, "publish", str(lora_dir), "--name", "med",
                     "--eval-gate", str(gate_config))  # fmt: skip
    one_line_error(worse, 2, "evaluation gate refused med@2: med@2 scores")
    assert "than med@1" not in worse.stderr and "med@1's 100.0%" in worse.stderr
    refused = adapters(tmp_path, tiny_base, "promote", "med", "2")
    one_line_error(refused, 2, "med@2 failed its evaluation gate")

    canary = adapters(tmp_path, tiny_base, "publish", str(lora_dir), "--name", "med",
                      "--eval-gate", str(gate_config), "--canary", "10")  # fmt: skip
    assert canary.returncode == 0, canary.stderr
    assert json.loads(canary.stdout)["canary_percent"] == 10

    listed = json.loads(adapters(tmp_path, tiny_base, "list", "--json").stdout)
    assert [(v["version"], v["state"]) for v in listed] == [
        (1, "active"), (2, "retired"), (3, "canary"),
    ]  # fmt: skip
    assert listed[1]["manifest"]["evaluation"]["gate_passed"] == 0.0


def test_a_missing_gate_config_publishes_nothing(
    tmp_path: Path, tiny_base: Path, lora_dir: Path
) -> None:
    missing = adapters(tmp_path, tiny_base, "publish", str(lora_dir), "--name", "med",
                       "--eval-gate", str(tmp_path / "nope.yaml"))  # fmt: skip
    one_line_error(missing, 2, "nope.yaml does not exist")
    assert json.loads(adapters(tmp_path, tiny_base, "list", "--json").stdout) == []
