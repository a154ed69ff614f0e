"""The scope each route needs: one table, default deny.

A key holds a set of scopes (`server.db.keys.SCOPES`); a route names the scopes that admit a
caller (any one is enough). `/v1/models` admits chat and embeddings keys alike, because both
kinds of client list models before using them. Probes and metrics are public: load balancers
and Prometheus carry no keys, and none of them returns request content.

CDS Hooks discovery (`GET /cds-services`) is public too: the EMR's administrators register a
service by reading it, often from tooling that holds no token, and it returns only the service
catalogue (ids, hooks, prefetch templates), never patient data. The hook calls under
`/cds-services/` need the `cds` scope, from an API key or from an EMR's signed JWT; a JWT is
accepted there and nowhere else (`accepts_client_jwt`).
"""

from __future__ import annotations

PUBLIC: frozenset[str] = frozenset({"/health", "/ready", "/metrics", "/cds-services"})
"""Paths anyone may call."""

ROUTE_SCOPES: dict[str, frozenset[str]] = {
    "/v1/models": frozenset({"chat", "embeddings"}),
    "/v1/chat/completions": frozenset({"chat"}),
    "/v1/completions": frozenset({"chat"}),
    "/v1/embeddings": frozenset({"embeddings"}),
    "/v1/clinical/intake": frozenset({"intake"}),
    "/v1/clinical/feedback": frozenset({"feedback"}),
    "/v1/admin/audit": frozenset({"admin"}),
    # Adapters are the deployment's, not a tenant's: their own scope, given only to the
    # operators and ML engineers who roll models out (a tenant admin reads its audit trail).
    "/v1/admin/adapters": frozenset({"adapters"}),
    "/v1/admin/adapters/{name}/rollback": frozenset({"adapters"}),
    "/v1/admin/adapters/{name}/{version}/promote": frozenset({"adapters"}),
    "/v1/admin/adapters/{name}/{version}/canary": frozenset({"adapters"}),
    "/v1/admin/adapters/{name}/{version}/retire": frozenset({"adapters"}),
    "/cds-services/{service_id}": frozenset({"cds"}),
}
"""Route path (as declared, e.g. with `{name}` placeholders) -> scopes that admit a caller."""

NO_SCOPE: frozenset[str] = frozenset()
"""What an unclassified route requires: a scope no key can hold, i.e. nobody gets in."""


CDS_CLIENT_PREFIX = "/cds-services/"
"""Routes under this prefix take an EMR's CDS Hooks JWT as well as an API key."""


def accepts_client_jwt(path: str) -> bool:
    """Whether the declared route `path` takes a CDS client's JWT (the /v1 routes never do)."""
    return path.startswith(CDS_CLIENT_PREFIX)


def required_scopes(path: str) -> frozenset[str] | None:
    """None for a public path; otherwise the admitting scopes (empty: refuse everyone)."""
    if path in PUBLIC:
        return None
    return ROUTE_SCOPES.get(path, NO_SCOPE)
