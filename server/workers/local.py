"""The managed local vLLM CPU worker: started, watched and stopped with the gateway.

Used when no external worker is configured, so `clinserve serve` alone answers requests on
a laptop or a CPU box. The worker listens on loopback only, behind a random key minted per
start, with runtime LoRA loading enabled so adapters can be hot-swapped like on GPU workers.
If it dies it is restarted with backoff; the pool's health probes take it out of rotation
meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import sys
from pathlib import Path

from server.settings import LocalWorkerSettings
from server.workers.pool import Worker

_COMPACT_JSON = json.dumps({"backend": "xgrammar", "disable_any_whitespace": True})
log = logging.getLogger(__name__)

_STOP_GRACE_S = 20.0
_MAX_BACKOFF_S = 60.0


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LocalWorker:
    def __init__(
        self,
        model: str,
        served_name: str,
        settings: LocalWorkerSettings,
        log_path: Path,
        python: str = sys.executable,
    ) -> None:
        self.model = model
        self.served_name = served_name
        self.settings = settings
        self.log_path = log_path
        self.python = python
        self.worker = Worker(url="http://127.0.0.1:0", name="local-cpu")
        self.restarts = 0
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False

    def command(self, port: int) -> list[str]:
        s = self.settings
        args = [
            self.python, "-m", "vllm.entrypoints.openai.api_server",
            "--host", "127.0.0.1",
            "--port", str(port),
            "--model", self.model,
            "--served-model-name", self.served_name,
            "--dtype", s.dtype,
            "--max-model-len", str(s.max_model_len),
            "--enable-lora",
            "--max-loras", str(s.max_loras),
            "--max-lora-rank", str(s.max_lora_rank),
        ]  # fmt: skip
        if s.tool_call_parser:
            args += ["--enable-auto-tool-choice", "--tool-call-parser", s.tool_call_parser]
        if s.enforce_eager:
            args.append("--enforce-eager")
        if not any(arg.startswith("--structured-outputs-config") for arg in s.extra_args):
            # JSON-schema answers (the model intake engine) without free whitespace: under
            # constrained decoding a small model can otherwise spend its budget on blanks.
            args += ["--structured-outputs-config", _COMPACT_JSON]
        return args + s.extra_args

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            VLLM_ALLOW_RUNTIME_LORA_UPDATING="True",
            VLLM_CPU_KVCACHE_SPACE=str(max(1, round(self.settings.kv_cache_gib))),
            VLLM_NO_USAGE_STATS="1",
            DO_NOT_TRACK="1",
            VLLM_API_KEY=self.worker.api_key or "",
        )
        if Path(self.model).is_dir():
            env["HF_HUB_OFFLINE"] = "1"  # a local model must never reach for a hub
        return env

    async def start(self) -> None:
        """Spawn the worker and return at once; readiness is the pool's health probe's job."""
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name="local-worker")

    async def _spawn(self) -> None:
        port = free_loopback_port()
        self.worker.url = f"http://127.0.0.1:{port}"
        self.worker.api_key = secrets.token_urlsafe(32)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            self._process = await asyncio.create_subprocess_exec(
                *self.command(port),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=asyncio.subprocess.STDOUT,
                env=self.environment(),
                start_new_session=True,  # its own process group, stopped as one
            )
        log.info(
            "local vLLM worker starting (pid %s, port %s, log %s)",
            self._process.pid, port, self.log_path,
        )  # fmt: skip

    async def _supervise(self) -> None:
        backoff = self.settings.restart_backoff_s
        while not self._stopping:
            assert self._process is not None
            code = await self._process.wait()
            if self._stopping:
                return
            self.worker.healthy = False
            self.worker.models = {}
            log.error("local vLLM worker exited with %s; restarting in %.0fs", code, backoff)
            await asyncio.sleep(backoff)
            backoff = min(max(backoff * 2, 1.0), _MAX_BACKOFF_S)
            self.restarts += 1
            await self._spawn()

    def kill_now(self) -> None:
        """Last resort when the event loop is gone (forced exit): never leave an orphan."""
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    async def stop(self) -> None:
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(_STOP_GRACE_S):
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
