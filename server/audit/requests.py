"""The audit record of one finished HTTP request, built from what the request left behind.

Called by the request middleware after the last byte (or the failure) of every request; only
`/v1` routes and the CDS Hooks calls are audited (probes, metrics and the CDS discovery
catalogue are not clinical requests). Who asked comes from the principal the auth dependency
stored (a key, or an EMR's CDS client); what happened from the request's `RequestFacts`.
A hook call's route is the path called (`/cds-services/patient-view`), not the declared
`/cds-services/{service_id}`: which hook ran is the first thing a reviewer asks.
A request refused before authentication (401) is audited too, with no tenant: failed access
attempts are exactly what an audit trail is for.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from server.audit.chain import AuditRecord
from server.audit.writer import AuditWriter
from server.db.models import utc_now
from server.pipeline.facts import RequestFacts
from server.security.principal import Principal
from server.security.scopes import CDS_CLIENT_PREFIX

AUDITED_PREFIXES = ("/v1/", CDS_CLIENT_PREFIX)


def without_nul(value: str | None) -> str | None:
    """PostgreSQL refuses NUL in text: one odd request must not make a batch unwritable."""
    return None if value is None else value.replace("\x00", "\ufffd")


def bounded(value: str | None, limit: int) -> str | None:
    """Client-chosen strings (model names, ids) cut to their column, without NUL."""
    cleaned = without_nul(value)
    return None if cleaned is None else cleaned[:limit]


class RequestAuditor:
    def __init__(self, writer: AuditWriter) -> None:
        self.writer = writer

    def __call__(self, scope: MutableMapping[str, Any], status: int, elapsed_s: float) -> None:
        path: str = scope.get("path", "")
        if not path.startswith(AUDITED_PREFIXES):
            return
        state: dict[str, Any] = scope.get("state", {})
        facts: RequestFacts = state.get("facts") or RequestFacts()
        principal: Principal | None = state.get("principal")
        declared = getattr(scope.get("route"), "path", None)
        route = path if path.startswith(CDS_CLIENT_PREFIX) else declared or path
        client = principal.client if principal else None
        self.writer.submit(
            AuditRecord(
                created_at=utc_now(),
                request_id=state.get("request_id", ""),
                route=bounded(route, 64) or "",
                status=status,
                latency_ms=round(elapsed_s * 1000, 3),
                completion_id=bounded(facts.completion_id, 128),
                tenant_id=principal.tenant_id if principal else None,
                key_id=principal.key_id if principal else None,
                end_user=principal.end_user if principal else None,
                client=bounded(client.label, 512) if client else None,
                model=bounded(facts.model, 256),
                adapter=bounded(facts.adapter, 256),
                prompt_tokens=facts.prompt_tokens,
                completion_tokens=facts.completion_tokens,
                prompt_sha256=facts.prompt_sha256,
                response_sha256=facts.response_sha256,
                citations=facts.citations,
                intake_mode=facts.intake_mode,
                intake_subcategories=facts.intake_subcategories,
                red_flags=facts.red_flags,
                prompt_text=without_nul(facts.prompt_text),
                response_text=without_nul(facts.response_text),
            )
        )
