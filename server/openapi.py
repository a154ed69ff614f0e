"""The OpenAPI document, completed with what FastAPI cannot see on its own.

The completion routes read their JSON body themselves (to cap its size while it arrives and
to pass unknown fields through to vLLM), so FastAPI generates no request schema for them.
This fills in each body from the same pydantic models the routes validate with, documents the
error envelope on every `/v1` and CDS Hooks route with the statuses the gateway really
answers, and declares the bearer-key scheme. Clients and fuzzers (`make fuzz`) read the result.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from server.cds.models import HookRequest
from server.feedback.request import FeedbackRequest
from server.protocol import ChatCompletionRequest, CompletionRequest
from server.routes.adapters import CanaryRequest, PublishRequest
from server.routes.clinical import IntakeRequest
from server.routes.embeddings import EmbeddingRequest

BODIES: dict[str, type[BaseModel]] = {
    "/v1/chat/completions": ChatCompletionRequest,
    "/v1/completions": CompletionRequest,
    "/v1/embeddings": EmbeddingRequest,
    "/v1/clinical/intake": IntakeRequest,
    "/v1/clinical/feedback": FeedbackRequest,
    "/v1/admin/adapters": PublishRequest,
    "/v1/admin/adapters/{name}/{version}/canary": CanaryRequest,
    "/cds-services/{service_id}": HookRequest,
}
AUTHENTICATED = ("/v1/", "/cds-services/")
"""Path prefixes whose routes take a bearer credential and answer the error envelope (CDS
Hooks discovery, `/cds-services` itself, is public like the probes)."""
STREAMED = frozenset({"/v1/chat/completions", "/v1/completions"})
"""Routes that answer server-sent events instead of JSON when the body asks `stream: true`."""
SSE_EVENT = {
    "description": "One server-sent event (OpenAPI 3.1 describes an event stream per event): "
    "`data` is a JSON chunk, or `[DONE]` at the end.",
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {"type": "string"},
        "event": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer", "minimum": 0},
    },
}
ERROR_STATUSES = {
    "400": "Invalid request (the error's `param` names the field)",
    "401": "No API key, or an unknown, revoked or expired one",
    "403": "The key lacks this route's scope",
    "404": "Unknown model, route or object",
    "405": "Method not allowed",
    "409": "The object's state forbids it (e.g. retiring the active adapter version)",
    "413": "Request body too large",
    "429": "A rate limit or the gateway's capacity is spent (see Retry-After)",
    "499": "The client closed the connection",
    "502": "The worker failed",
    "503": "No healthy worker, queue timeout, shutting down, or embedder unavailable",
    "504": "The worker was too slow",
}
PATH_STATUSES = {
    "/cds-services/{service_id}": {
        "412": "CDS Hooks: the record was neither prefetched nor readable from the FHIR server",
    },
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
    """Make `app.openapi()` return the completed document (built once, then cached).

    Call it after `app.state.gateway` is set: the document states this deployment's
    `max_tokens` cap, which the gateway refuses to exceed (400) rather than clamp.
    """

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            app.openapi_schema = complete(document, app.state.gateway.settings.limits.max_tokens)
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]


def complete(document: dict[str, Any], max_tokens: int | None = None) -> dict[str, Any]:
    """FastAPI's `document`, with the bodies, error answers and auth it cannot infer, and
    `max_tokens` (when the deployment caps it) as the maximum of the token-budget fields."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["ErrorEnvelope"] = ERROR_ENVELOPE
    components["securitySchemes"] = {"bearerAuth": {"type": "http", "scheme": "bearer"}}
    envelope = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
    metrics = document.get("paths", {}).get("/metrics", {}).get("get")
    if metrics is not None:  # Prometheus' text format, not JSON
        metrics["responses"]["200"]["content"] = {"text/plain": {"schema": {"type": "string"}}}
    ready = document.get("paths", {}).get("/ready", {}).get("get")
    if ready is not None:  # same body as 200, while draining or with no healthy worker
        ready["responses"]["503"] = {**ready["responses"]["200"], "description": "Not ready"}
    for path, operations in document.get("paths", {}).items():
        if not path.startswith(AUTHENTICATED):
            continue
        statuses = {**ERROR_STATUSES, **PATH_STATUSES.get(path, {})}
        for method, operation in operations.items():
            operation["security"] = [{"bearerAuth": []}]
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)  # FastAPI's default; the gateway answers 400 instead
            if path in STREAMED:
                responses["200"]["content"]["text/event-stream"] = {"schema": SSE_EVENT}
            for status, description in statuses.items():
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
    if max_tokens is not None:
        for name in (ChatCompletionRequest.__name__, CompletionRequest.__name__):
            fields = schemas[name]["properties"]
            for field in ("max_tokens", "max_completion_tokens"):
                for branch in fields.get(field, {}).get("anyOf", []):
                    if branch.get("type") == "integer":
                        branch["maximum"] = max_tokens
    schemas.pop("HTTPValidationError", None)  # only FastAPI's dropped 422 used these
    schemas.pop("ValidationError", None)
    return document
