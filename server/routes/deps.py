"""Dependencies as `Annotated` aliases, so route signatures say what they use."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from server.gateway import Gateway


async def _gateway(request: Request) -> Gateway:
    """Async on purpose: FastAPI runs a plain `def` dependency in a thread pool per request."""
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(_gateway)]
