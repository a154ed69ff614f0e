"""Dependencies as `Annotated` aliases, so route signatures say what they use."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from server.errors import PermissionDenied
from server.gateway import Gateway
from server.security.principal import Principal
from server.security.scopes import accepts_client_jwt, required_scopes


async def _gateway(request: Request) -> Gateway:
    """Async on purpose: FastAPI runs a plain `def` dependency in a thread pool per request."""
    gateway: Gateway = request.app.state.gateway
    return gateway


async def authorize(request: Request) -> None:
    """The app-wide dependency: authenticate, then check the route's scope (default deny).

    Runs before the body is read, so an unauthenticated caller cannot make the gateway
    buffer a large body. The principal is left in `request.state` for the routes, the
    rate limiter and the audit record.
    """
    route = request.scope.get("route")
    declared = getattr(route, "path", request.url.path)
    needed = required_scopes(declared)
    if needed is None:
        return
    gateway: Gateway = request.app.state.gateway
    if accepts_client_jwt(declared):  # the CDS Hooks routes: an API key or the EMR's JWT
        principal = await gateway.cds_auth.authenticate(request.headers, request.url.path)
    else:
        principal = await gateway.auth.authenticate(request.headers)
    request.state.principal = principal
    if not principal.scopes & needed:
        wanted = " or ".join(sorted(needed)) or "a scope no key holds"
        holder = "CDS client" if principal.client is not None else "API key"
        raise PermissionDenied(f"This {holder} lacks the scope this route needs: {wanted}.")


async def _principal(request: Request) -> Principal:
    principal: Principal = request.state.principal
    return principal


GatewayDep = Annotated[Gateway, Depends(_gateway)]
PrincipalDep = Annotated[Principal, Depends(_principal)]
