"""The OpenAPI document, completed with what FastAPI cannot see on its own.

The completion routes read their JSON body themselves (to cap its size while it arrives and
to pass unknown fields through to vLLM), so FastAPI generates no request schema for them.
This fills in each body from the same pydantic models the routes validate with, documents the
error envelope on every `/v1` route with the statuses the gateway really answers, and
declares the bearer-key scheme. Clients and fuzzers (`make fuzz`) read the result.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from server.feedback.request import FeedbackRequest
from server.protocol import ChatCompletionRequest, CompletionRequest
from server.routes.clinical import IntakeRequest
from server.routes.embeddings import EmbeddingRequest

BODIES: dict[str, type[BaseModel]] = {
    "/v1/chat/completions": ChatCompletionRequest,
    "/v1/completions": CompletionRequest,
    "/v1/embeddings": EmbeddingRequest,
    "/v1/clinical/intake": IntakeRequest,
    "/v1/clinical/feedback": FeedbackRequest,
}
ERROR_STATUSES = {
    "400": "Invalid request (the error's `param` names the field)",
    "401": "No API key, or an unknown, revoked or expired one",
    "403": "The key lacks this route's scope",
    "404": "Unknown model, route or object",
    "405": "Method not allowed",
    "413": "Request body too large",
    "429": "A rate limit or the gateway's capacity is spent (see Retry-After)",
    "499": "The client closed the connection",
    "502": "The worker failed",
    "503": "No healthy worker, queue timeout, shutting down, or embedder unavailable",
    "504": "The worker was too slow",
}
ERROR_ENVELOPE = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": "integer"},
            },
        }
    },
}


def install_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` return the completed document (built once, then cached)."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(
                get_openapi(
                    title=app.title, version=app.version, summary=app.summary, routes=app.routes
                )
            )
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]


def complete(document: dict[str, Any]) -> dict[str, Any]:
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["ErrorEnvelope"] = ERROR_ENVELOPE
    components["securitySchemes"] = {"bearerAuth": {"type": "http", "scheme": "bearer"}}
    envelope = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
    metrics = document.get("paths", {}).get("/metrics", {}).get("get")
    if metrics is not None:  # Prometheus' text format, not JSON
        metrics["responses"]["200"]["content"] = {"text/plain": {"schema": {"type": "string"}}}
    for path, operations in document.get("paths", {}).items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            operation["security"] = [{"bearerAuth": []}]
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)  # FastAPI's default; the gateway answers 400 instead
            for status, description in ERROR_STATUSES.items():
                responses.setdefault(status, {"description": description, "content": envelope})
            model = BODIES.get(path) if method == "post" else None
            if model is not None:
                body = model.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(body.pop("$defs", {}))
                schemas[model.__name__] = body
                reference = {"$ref": f"#/components/schemas/{model.__name__}"}
                operation["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": reference}},
                }
    document.get("components", {}).get("schemas", {}).pop("HTTPValidationError", None)
    document.get("components", {}).get("schemas", {}).pop("ValidationError", None)
    return document
