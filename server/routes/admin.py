"""`GET /v1/admin/audit`: a tenant's own audit trail, filtered and paged (admin scope).

An admin key sees its own tenant's rows only; with authentication switched off, the rows
recorded without a tenant. Paging is by the chain position `seq` (keyset, stable while rows
are being added): pass the `last_seq` of one page as `after` to get the next.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from server.audit.store import MAX_PAGE, EventFilter
from server.errors import InvalidRequest
from server.routes.deps import GatewayDep, PrincipalDep

router = APIRouter()


@router.get("/v1/admin/audit")
async def audit_events(
    gateway: GatewayDep,
    principal: PrincipalDep,
    since: datetime | None = None,
    until: datetime | None = None,
    route: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[int | None, Query(ge=100, le=599)] = None,
    key_id: Annotated[int | None, Query(ge=1)] = None,
    end_user: Annotated[str | None, Query(max_length=256)] = None,
    model: Annotated[str | None, Query(max_length=256)] = None,
    red_flags: bool | None = None,
    after: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> dict[str, Any]:
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise InvalidRequest(f"{name} needs a time zone, e.g. 2026-11-22T00:00:00Z", param=name)
    where = EventFilter(since, until, route, status, key_id, end_user, model, red_flags)
    store = gateway.audit.store
    rows = await asyncio.to_thread(
        store.list_events, principal.tenant_id, where, after_seq=after, limit=limit + 1
    )
    page = rows[:limit]
    return {
        "object": "list",
        "data": page,
        "has_more": len(rows) > limit,
        "last_seq": page[-1]["seq"] if page else after,
    }
