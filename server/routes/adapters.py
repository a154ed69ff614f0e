"""`/v1/admin/adapters`: the adapter registry over HTTP (the `adapters` scope).

The same operations as `clinserve adapters`, for a training pipeline or a console: list,
publish, promote, canary, retire, rollback. Publishing reads a folder inside the incoming
folder (`CLINSERVE_ADAPTERS__INCOMING`), named relative to it, so an API key can never make
the gateway read or copy from anywhere else on its host. Changes reach every worker through
the reconciler within its interval; each answer is the version's registry entry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from server.adapters.inspect import AdapterRefused
from server.adapters.location import OutsideRoot, resolve_location
from server.adapters.publish import EvalGate, ServedBase, publish
from server.adapters.registry import NAME, RegistryError, UnknownAdapter
from server.errors import Conflict, InvalidRequest, ObjectNotFound
from server.pipeline.validation import validate
from server.routes.deps import GatewayDep
from server.routes.openai import read_json_body

router = APIRouter()
T = TypeVar("T")

NAME_PATTERN = f"^{NAME.pattern}$"  # pydantic searches; an adapter name must match whole
AdapterName = Annotated[str, Path(pattern=NAME_PATTERN, max_length=64)]
Version = Annotated[int, Path(ge=1)]


class PublishRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, max_length=500, description="folder under incoming")
    name: str = Field(pattern=NAME_PATTERN)
    canary_percent: int | None = Field(default=None, gt=0, lt=100)
    eval_gates: list[str] = Field(default_factory=list, max_length=20)


class CanaryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    percent: int = Field(gt=0, lt=100)


@router.get("/v1/admin/adapters")
async def list_adapters(gateway: GatewayDep, name: str | None = None) -> dict[str, Any]:
    versions = await asyncio.to_thread(gateway.adapters.list_versions, name)
    return {"object": "list", "data": [version.to_json() for version in versions]}


@router.post("/v1/admin/adapters")
async def publish_adapter(request: Request, gateway: GatewayDep) -> dict[str, Any]:
    body = await read_json_body(request, gateway.settings.limits.max_body_bytes)
    parsed = validate(PublishRequest, body)
    settings = gateway.settings
    try:
        source = resolve_location(settings.adapters.incoming_in(settings.data_dir), parsed.source)
    except OutsideRoot as exc:
        raise InvalidRequest(str(exc), param="source") from None

    def run() -> dict[str, Any]:
        version = publish(
            source,
            parsed.name,
            registry=gateway.adapters,
            root=settings.adapters.root_in(settings.data_dir),
            base=ServedBase(settings.model.name),
            max_rank=settings.local_worker.max_lora_rank,
            canary_percent=parsed.canary_percent,
            gates=[EvalGate.parse(gate) for gate in parsed.eval_gates],
        )
        return version.to_json()

    return await _registry(run)


@router.post("/v1/admin/adapters/{name}/{version}/promote")
async def promote(name: AdapterName, version: Version, gateway: GatewayDep) -> dict[str, Any]:
    return await _registry(lambda: gateway.adapters.promote(name, version).to_json())


@router.post("/v1/admin/adapters/{name}/{version}/canary")
async def canary(
    name: AdapterName, version: Version, request: Request, gateway: GatewayDep
) -> dict[str, Any]:
    body = await read_json_body(request, gateway.settings.limits.max_body_bytes)
    percent = validate(CanaryRequest, body).percent
    return await _registry(lambda: gateway.adapters.set_canary(name, version, percent).to_json())


@router.post("/v1/admin/adapters/{name}/{version}/retire")
async def retire(name: AdapterName, version: Version, gateway: GatewayDep) -> dict[str, Any]:
    return await _registry(lambda: gateway.adapters.retire(name, version).to_json())


@router.post("/v1/admin/adapters/{name}/rollback")
async def rollback(name: AdapterName, gateway: GatewayDep) -> dict[str, Any]:
    return await _registry(lambda: gateway.adapters.rollback(name).to_json())


async def _registry(change: Callable[[], T]) -> T:
    """Run a registry operation in a thread (database and file I/O), mapping its refusals:
    an unknown version 404, a bad adapter 400, a state-machine rule 409."""
    try:
        return await asyncio.to_thread(change)
    except UnknownAdapter as exc:
        raise ObjectNotFound(str(exc)) from None
    except AdapterRefused as exc:
        raise InvalidRequest(str(exc)) from None
    except RegistryError as exc:
        raise Conflict(str(exc)) from None
