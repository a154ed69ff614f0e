"""A fake EMR FHIR server for the CDS Hooks tests: real HTTP on a loopback port.

It serves one patient's resources the way a FHIR server answers prefetch queries — a read
(`Patient/<id>`) and type-level searches answered with searchset Bundles, Observations
filtered by `category` — and records every request (path, query, Authorization header) so
a test can check what the CDS service asked and with which token. Tests flip its behaviour:
answer slowly, fail with a status, split searches into pages (with `next` links on this
server or, to test that they are refused, on another one), or answer with invalid FHIR.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


@dataclass
class FhirBehaviour:
    resources: list[dict[str, Any]] = field(default_factory=list)
    token: str = "fhir-access-token"  # the bearer token it accepts (anything else: 401)
    delay_s: float = 0.0
    fail_with: int | None = None
    page_size: int | None = None  # split search results into pages of this many entries
    next_base: str | None = None  # where `next` links point (None: this server)
    invalid: bool = False  # answer searches with entries that are not valid FHIR
    requests: list[dict[str, Any]] = field(default_factory=list)


def _categories(resource: dict[str, Any]) -> set[str]:
    return {
        coding.get("code")
        for category in resource.get("category", [])
        for coding in category.get("coding", [])
        if coding.get("system") == CATEGORY
    }


def fake_fhir_app(behaviour: FhirBehaviour) -> Starlette:
    async def handle(request: Request) -> Response:
        path = request.path_params["path"]
        behaviour.requests.append(
            {
                "path": path,
                "query": dict(request.query_params),
                "authorization": request.headers.get("authorization"),
                "accept": request.headers.get("accept"),
            }
        )
        if behaviour.delay_s:
            await asyncio.sleep(behaviour.delay_s)
        if behaviour.fail_with is not None:
            return JSONResponse({"resourceType": "OperationOutcome"}, behaviour.fail_with)
        if request.headers.get("authorization") != f"Bearer {behaviour.token}":
            return JSONResponse({"resourceType": "OperationOutcome"}, 401)
        kind, _, resource_id = path.partition("/")
        if resource_id:
            for resource in behaviour.resources:
                if resource["resourceType"] == kind and resource.get("id") == resource_id:
                    return JSONResponse(resource)
            return JSONResponse({"resourceType": "OperationOutcome"}, 404)
        return JSONResponse(_search(request, kind))

    def _search(request: Request, kind: str) -> dict[str, Any]:
        wanted = request.query_params.get("category")
        found = [
            r
            for r in behaviour.resources
            if r["resourceType"] == kind
            and (wanted is None or _categories(r) & set(wanted.split(",")))
        ]
        if behaviour.invalid:
            found = [{"resourceType": kind, "status": 42}]
        page = int(request.query_params.get("_page", "1"))
        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
        size = behaviour.page_size
        if size is not None:
            shown = found[(page - 1) * size : page * size]
            if page * size < len(found):
                base = behaviour.next_base or str(request.base_url).rstrip("/")
                query = "&".join(
                    f"{k}={v}" for k, v in request.query_params.items() if k != "_page"
                )
                url = f"{base}/fhir/{kind}?{query}&_page={page + 1}"
                bundle["link"] = [{"relation": "next", "url": url}]
            found = shown
        bundle["entry"] = [{"resource": r} for r in found]
        return bundle

    return Starlette(routes=[Route("/fhir/{path:path}", handle)])
