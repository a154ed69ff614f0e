"""`POST /v1/clinical/feedback`: a clinician's rating of one completion, for training data.

Feedback belongs to the caller's tenant and names a completion by its `id`; the completion
must be one of the tenant's own (found through the audit trail). Another tenant's completion
is a 404 exactly like a completion that never existed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from server.errors import ObjectNotFound, PermissionDenied
from server.feedback.request import FeedbackRequest
from server.feedback.store import UnknownCompletion
from server.pipeline.validation import validate
from server.routes.deps import GatewayDep, PrincipalDep
from server.routes.openai import read_json_body

router = APIRouter()

AUDIT_CATCH_UP_S = 2.0
"""How long to wait for the audit writer when the completion may still be in its queue."""


@router.post("/v1/clinical/feedback", status_code=201)
async def feedback(request: Request, gateway: GatewayDep, principal: PrincipalDep) -> Any:
    body = await read_json_body(request, gateway.settings.limits.max_body_bytes)
    parsed = validate(FeedbackRequest, body)
    tenant_id = principal.tenant_id
    if tenant_id is None:
        raise PermissionDenied("Feedback belongs to a tenant: call with an API key.")
    store = gateway.feedback

    def record() -> Any:
        return store.record(tenant_id, principal.key_id, principal.end_user, parsed)

    try:
        view = await asyncio.to_thread(record)
    except UnknownCompletion:
        # The completion's audit row may still be queued (rows are written in batches).
        await asyncio.to_thread(gateway.audit.flush, AUDIT_CATCH_UP_S)
        try:
            view = await asyncio.to_thread(record)
        except UnknownCompletion:
            raise ObjectNotFound(
                "No completion with that id for this tenant.", param="completion_id"
            ) from None
    return JSONResponse({"object": "clinical.feedback", **view.to_json()}, status_code=201)
