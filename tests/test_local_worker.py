"""The managed local worker's command line and environment (the process itself is exercised
for real in test_vllm_integration.py)."""

from __future__ import annotations

import json
from pathlib import Path

from server.settings import LocalWorkerSettings
from server.workers.local import LocalWorker


def make(tmp_path: Path, **settings: object) -> LocalWorker:
    return LocalWorker(
        str(tmp_path), "served", LocalWorkerSettings(**settings), tmp_path / "worker.log"
    )


def test_command_is_loopback_lora_enabled_and_tool_aware(tmp_path: Path) -> None:
    command = make(tmp_path, max_loras=3, max_lora_rank=16).command(port=1234)
    joined = " ".join(command)
    assert "-m vllm.entrypoints.openai.api_server" in joined
    assert "--host 127.0.0.1 --port 1234" in joined
    assert "--enable-lora --max-loras 3 --max-lora-rank 16" in joined
    assert "--enable-auto-tool-choice --tool-call-parser hermes" in joined
    assert "--served-model-name served" in joined
    assert "--api-key" not in command, "the key travels in the environment, not in `ps` output"


def test_tool_parser_can_be_disabled_and_extra_args_appended(tmp_path: Path) -> None:
    command = make(tmp_path, tool_call_parser="", extra_args=["--seed", "3"]).command(port=1)
    assert "--enable-auto-tool-choice" not in command
    assert command[-2:] == ["--seed", "3"]


def test_json_schema_answers_are_compact_unless_configured_otherwise(tmp_path: Path) -> None:
    command = make(tmp_path).command(port=1)
    flag = command.index("--structured-outputs-config")
    assert json.loads(command[flag + 1]) == {"backend": "xgrammar", "disable_any_whitespace": True}
    own = ["--structured-outputs-config", '{"backend": "guidance"}']
    configured = make(tmp_path, extra_args=own).command(port=1)
    assert configured.count("--structured-outputs-config") == 1 and configured[-2:] == own


def test_environment_enables_runtime_lora_and_stays_offline(tmp_path: Path) -> None:
    worker = make(tmp_path, kv_cache_gib=3)
    worker.worker.api_key = "secret"
    env = worker.environment()
    assert env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "3"
    assert env["VLLM_API_KEY"] == "secret"
    assert env["HF_HUB_OFFLINE"] == "1", "a local model folder never reaches for a hub"
    assert env["VLLM_NO_USAGE_STATS"] == "1"
