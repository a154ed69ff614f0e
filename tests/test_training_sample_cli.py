"""`clinserve train sample` against a real HTTP endpoint (the fake vLLM worker on a loopback
port): the recipe's settings reach the endpoint and the report counts what happened; a
wrong model name stops the run with one line. Pair building itself is tested in
tests/test_training_sampling.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.fakes import FakeBehaviour, ServerThread, fake_worker_app
from training.data import load_records

RECIPE = Path(__file__).resolve().parents[1] / "training" / "recipes" / "smoke-sample.yaml"


def sample(tmp_path: Path, url: str, model: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("CLINSERVE_")}
    env |= {"CLINSERVE_BASE_URL": f"{url}/v1", "CLINSERVE_MODEL": model}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "train", "sample", str(RECIPE)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip


def test_sample_asks_the_endpoint_and_reports(tmp_path: Path) -> None:
    behaviour = FakeBehaviour(reply="Answer: A")
    with ServerThread(fake_worker_app(behaviour)) as worker:
        done = sample(tmp_path, worker.url, "fake-model")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)["report"]
    items = load_records(RECIPE.parent / "data" / "mcq.jsonl", "mcq", 8)
    answered_a = sum(item["answer"] == "A" for item in items)
    # the fake gives every sample the same answer: no question has both a right and a wrong one
    assert report == {
        "questions": 8, "pairs": 0, "all_correct": answered_a,
        "none_correct": 8 - answered_a, "failed": 0,
    }  # fmt: skip
    assert {(r["n"], r["temperature"], r["max_tokens"]) for r in behaviour.requests} == {
        (4, 1.0, 64)
    }


def test_an_unknown_model_stops_with_one_line(tmp_path: Path) -> None:
    with ServerThread(fake_worker_app(FakeBehaviour())) as worker:
        done = sample(tmp_path, worker.url, "no-such-model")
    assert done.returncode == 2, done.stderr
    assert "no-such-model" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
