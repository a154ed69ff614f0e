"""Schemathesis, a real property-based fuzzer, against a running gateway: every operation in
the OpenAPI document, with a key holding every scope, must never answer 5xx and must answer
only documented statuses, content types, headers and response bodies. `make fuzz` runs it
with a few hundred examples per operation; the normal suite with `CLINSERVE_FUZZ_EXAMPLES`
(default 25) to stay quick. Generation is deterministic (same cases every run, for CI) and
runs in a temporary directory, so no `.hypothesis/` database lands in the repository.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import schemathesis

from server.app import create_app
from server.openapi import BODIES, ERROR_STATUSES, STREAMED
from tests.auth_fixtures import AuthedGateway, start_authed_gateway
from tests.conftest import FakeWorker, isolated_settings

__all__ = ["start_authed_gateway"]

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    )
)
HOOKS = Path(__file__).with_name("fuzz_hooks.py")


def test_the_fuzzer_finds_no_server_error_and_no_undocumented_answer(
    start_authed_gateway: Callable[..., AuthedGateway], worker: FakeWorker, tmp_path: Path
) -> None:
    gateway = start_authed_gateway()
    key = gateway.key("chat,embeddings,intake,feedback,admin,adapters,cds")
    chat_model = worker.behaviour.models[0]
    served = {
        "/v1/chat/completions": chat_model,
        "/v1/completions": chat_model,
        "/v1/embeddings": gateway.gateway.guidelines.embedder.name,
    }
    examples = os.environ.get("CLINSERVE_FUZZ_EXAMPLES", "25")
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "run",
        f"{gateway.url}/openapi.json",
        "--header", f"Authorization: Bearer {key}",
        "--checks", CHECKS,
        "--max-examples", examples,
        "--generation-deterministic",
        "--phases", "examples,coverage,fuzzing",
        "--workers", "1",
        "--request-timeout", "30",
        "--report", "junit",
        "--report-dir", str(tmp_path),
    ]  # fmt: skip
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": str(HOOKS),
        "CLINSERVE_FUZZ_MODELS": json.dumps(served),
    }
    run = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800, check=False
    )
    summary = run.stdout[-6000:]
    print(summary)  # `make fuzz` shows the fuzzer's own summary
    assert run.returncode == 0, summary


def test_the_document_is_valid_openapi_and_documents_what_the_routes_read(
    tmp_path: Path,
) -> None:
    app = create_app(isolated_settings(tmp_path, [], limits={"max_tokens": 512}))
    document = app.openapi()
    assert app.openapi() is document  # built once
    schemathesis.openapi.from_dict(document).validate()  # against the OpenAPI 3.1 meta-schema
    assert document["openapi"].startswith("3.1")
    schemas = document["components"]["schemas"]
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path, model in BODIES.items():
        body = document["paths"][path]["post"]["requestBody"]
        assert body["required"]
        assert body["content"]["application/json"]["schema"]["$ref"].endswith(model.__name__)
        assert model.__name__ in schemas
    assert "$defs" not in json.dumps(document)  # every nested model moved to components
    for path, operations in document["paths"].items():
        for operation in operations.values():
            if not path.startswith(("/v1/", "/cds-services/")):
                assert "security" not in operation  # probes, /metrics, CDS discovery: no key
                continue
            assert operation["security"] == [{"bearerAuth": []}]
            assert set(ERROR_STATUSES) <= set(operation["responses"])
            assert "422" not in operation["responses"]
    for path in STREAMED:
        assert "text/event-stream" in document["paths"][path]["post"]["responses"]["200"]["content"]
    cap = schemas["ChatCompletionRequest"]["properties"]["max_tokens"]["anyOf"][0]
    assert cap == {"type": "integer", "minimum": 1, "maximum": 512}
