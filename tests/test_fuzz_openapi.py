"""Schemathesis, a real property-based fuzzer, against a running gateway: every operation in
the OpenAPI document, with a key holding every scope, must never answer 5xx and must answer
only documented statuses and content types. `make fuzz` runs it with a few hundred examples per
operation; the normal suite with `CLINSERVE_FUZZ_EXAMPLES` (default 20) to stay quick.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.auth_fixtures import AuthedGateway, start_authed_gateway

__all__ = ["start_authed_gateway"]

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance"


def test_the_fuzzer_finds_no_server_error_and_no_undocumented_answer(
    start_authed_gateway: Callable[..., AuthedGateway], tmp_path: Path
) -> None:
    gateway = start_authed_gateway()
    key = gateway.key("chat,embeddings,intake,feedback,admin")
    examples = os.environ.get("CLINSERVE_FUZZ_EXAMPLES", "20")
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "run",
        f"{gateway.url}/openapi.json",
        "--header", f"Authorization: Bearer {key}",
        "--checks", CHECKS,
        "--max-examples", examples,
        "--seed", "20261122",
        "--generation-deterministic",
        "--phases", "examples,coverage,fuzzing",
        "--workers", "1",
        "--request-timeout", "30",
        "--report", "junit",
        "--report-dir", str(tmp_path),
    ]  # fmt: skip
    run = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=1800, check=False
    )
    summary = run.stdout[-6000:]
    print(summary)  # `make fuzz` shows the fuzzer's own summary
    assert run.returncode == 0, summary
    assert "No issues found" in run.stdout or " passed" in run.stdout, summary
