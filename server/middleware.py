"""Request ids and request metrics, as one pure ASGI middleware.

Pure ASGI (not BaseHTTPMiddleware) so streaming and client-disconnect detection pass
through untouched, and so latency is measured at the last body byte of a stream rather
than when the handler returns.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.jsonlog import request_id_var
from server.metrics import Metrics
from server.pipeline.facts import RequestFacts

_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_ROUTES = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "completions",
    "/v1/models": "models",
    "/v1/embeddings": "embeddings",
    "/v1/clinical/intake": "intake",
    "/v1/clinical/feedback": "feedback",
    "/v1/admin/audit": "admin_audit",
    "/health": "health",
    "/ready": "ready",
    "/metrics": "metrics",
    "/cds-services": "cds_discovery",
}
_ROUTE_PREFIXES = (("/cds-services/", "cds_hook"),)
"""Routes whose paths carry an id: one metrics label for all (ids would be unbounded labels)."""


def route_name(path: str) -> str:
    """The metrics label of a request path; `other` for paths no route declares."""
    name = _ROUTES.get(path)
    if name is not None:
        return name
    return next((label for prefix, label in _ROUTE_PREFIXES if path.startswith(prefix)), "other")


def request_id_from(raw: bytes | None) -> str:
    """Reuse a well-formed client id (for tracing across systems); otherwise mint one."""
    if raw:
        candidate = raw.decode("latin-1")
        if _CLIENT_ID.match(candidate):
            return candidate
    return f"req-{uuid.uuid4().hex}"


Finished = Callable[[Scope, int, float], None]
"""Called once per request when its last byte has gone out (or it failed): the scope, the
status sent, and the seconds since it arrived. The audit trail hangs off this."""


class RequestObservation:
    def __init__(self, app: ASGIApp, metrics: Metrics, on_finish: Finished | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.on_finish = on_finish

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
        request_id = request_id_from(headers.get(b"x-request-id"))
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        request_id_var.set(request_id)  # this task's log lines carry it
        state["received"] = started
        state["facts"] = facts = RequestFacts()
        route = route_name(scope["path"])
        status = 499  # nginx's "client closed request", if nothing else is ever sent
        recorded = False

        async def send_observed(message: Message) -> None:
            nonlocal status, recorded
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    *facts.limit_headers,
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                recorded = True
                self._record(scope, route, status, state.get("model", ""), started)

        try:
            await self.app(scope, receive, send_observed)
        except Exception:
            status = 500
            raise
        finally:
            if not recorded:  # the app raised, or the client left mid-answer (499)
                final = status if status >= 400 else 499
                self._record(scope, route, final, state.get("model", ""), started)

    def _record(self, scope: Scope, route: str, status: int, model: str, started: float) -> None:
        if route in {"metrics", "health", "ready"}:
            return  # probes would drown the traffic they observe
        elapsed = time.perf_counter() - started
        self.metrics.requests.labels(route, str(status), model).inc()
        self.metrics.latency.labels(route, model).observe(elapsed)
        if self.on_finish is not None:
            self.on_finish(scope, status, elapsed)
