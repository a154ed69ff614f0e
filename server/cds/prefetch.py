"""Prefetch: the FHIR data a hook needs, from the request or from the EMR's FHIR server.

Per CDS Hooks 2.0 a prefetch key the client supplied is used as given, `null` included (the
spec's "no data for this template"); a key it left out is fetched from `fhirServer` with the
`fhirAuthorization` bearer token. Fetches go only to that server: templates are relative
queries, Bundle `next` links are followed only on the same origin, redirects are not
followed (so the token never travels elsewhere), plain http is refused unless the host is a
configured loopback one, and the whole fetch has one deadline. Anything that keeps a key
from being filled — no server, a refusal, a timeout, a page too many — is a
`PrefetchUnavailable`, which the spec answers with 412 Precondition Failed.

A fresh `httpx.AsyncClient` serves each hook call: cookies a FHIR server sets can never
reach another EMR's server, and the transport is the tests' seam.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import httpx

from server.errors import InvalidRequest
from server.settings import CdsSettings

MAX_PAGE_BYTES = 8 * 1024 * 1024
"""A FHIR page larger than this is refused rather than buffered."""

_TOKEN = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


class PrefetchUnavailable(Exception):
    """Needed data could not be obtained. The message names a reason, never data or URLs
    (they carry patient ids)."""


def fill(template: str, context: Mapping[str, Any]) -> str:
    """A relative FHIR query with each `{{context.x}}` replaced by the URL-encoded value of
    the context's top-level primitive field `x` (the spec's prefetch tokens)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        field_name = name.removeprefix("context.")
        found = context.get(field_name) if name.startswith("context.") else None
        if not isinstance(found, str | int) or isinstance(found, bool):
            raise PrefetchUnavailable(f"the context has no value for the token {name}")
        return quote(str(found), safe="")

    return _TOKEN.sub(value, template)


@dataclass(frozen=True)
class Resolved:
    """Each prefetch key's FHIR JSON (None: no data) and which keys were fetched."""

    data: dict[str, Any]
    fetched: tuple[str, ...] = ()


@dataclass(frozen=True)
class FhirServer:
    base: str  # scheme://host[:port]/path, without a trailing slash
    token: str = field(repr=False)
    origin: tuple[str, str, int | None] = field(init=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.base)
        object.__setattr__(self, "origin", (parts.scheme, parts.hostname or "", parts.port))

    def url(self, relative: str) -> str:
        return f"{self.base}/{relative.lstrip('/')}"

    def same_origin(self, url: str) -> bool:
        parts = urlsplit(url)
        try:
            return (parts.scheme, parts.hostname or "", parts.port) == self.origin
        except ValueError:
            return False


def fhir_server(base: str, token: str, settings: CdsSettings) -> FhirServer:
    """The request's FHIR server, if the deployment lets the service call it: https (plain
    http only to a configured loopback host), and one of `fhir_servers` when that is set."""
    parts = urlsplit(base)
    if parts.scheme != "https" and parts.hostname not in settings.allowed_http_hosts:
        raise InvalidRequest(
            "fhirServer must be an https URL (the spec requires TLS for patient data).",
            param="fhirServer",
        )
    listed = settings.fhir_servers
    if listed and not any(base == url or base.startswith(url + "/") for url in listed):
        raise InvalidRequest(
            "fhirServer is not one of the FHIR servers this service may call.", param="fhirServer"
        )
    return FhirServer(base, token)


class FhirFetcher:
    def __init__(
        self, settings: CdsSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self.transport = transport

    async def resolve(
        self,
        templates: Mapping[str, str],
        context: Mapping[str, Any],
        supplied: Mapping[str, Any] | None,
        server: FhirServer | None,
    ) -> Resolved:
        """Every template key's data: supplied, else fetched; unobtainable -> 412."""
        supplied = supplied or {}
        data = {key: supplied[key] for key in templates if key in supplied}
        missing = {key: fill(t, context) for key, t in templates.items() if key not in data}
        if not missing:
            return Resolved(data)
        if server is None:
            raise PrefetchUnavailable(
                f"prefetch is missing {', '.join(sorted(missing))} and the request names no "
                "fhirServer with a fhirAuthorization to read it from"
            )
        try:
            async with asyncio.timeout(self.settings.fetch_timeout_s):
                fetched = await self._fetch_all(server, missing)
        except TimeoutError:
            raise PrefetchUnavailable(
                f"the FHIR server did not answer within {self.settings.fetch_timeout_s:g} s"
            ) from None
        return Resolved({**data, **fetched}, tuple(sorted(missing)))

    async def _fetch_all(self, server: FhirServer, queries: dict[str, str]) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {server.token}", "Accept": "application/fhir+json"}
        timeout = httpx.Timeout(self.settings.fetch_timeout_s)
        async with httpx.AsyncClient(
            transport=self.transport, headers=headers, timeout=timeout, follow_redirects=False
        ) as client:
            try:
                async with asyncio.TaskGroup() as group:
                    tasks = {
                        key: group.create_task(self._fetch(client, server, query))
                        for key, query in queries.items()
                    }
            except* PrefetchUnavailable as failed:
                raise failed.exceptions[0] from None
        return {key: task.result() for key, task in tasks.items()}

    async def _fetch(self, client: httpx.AsyncClient, server: FhirServer, query: str) -> Any:
        """A read's resource (None if the server has no such resource), or a search's
        entries gathered into one searchset Bundle. A search that sets `_count` asks for the
        top N and gets its first page only; any other search follows `next` links up to
        `max_pages`, and more pages than that is a failure, not a silent truncation (a
        missing allergy on page six is worse than no answer)."""
        is_search = "?" in query or "/" not in query
        body = await self._get(client, server.url(query), read=not is_search)
        if body is None or not is_search:
            return body
        if body.get("resourceType") != "Bundle":
            raise PrefetchUnavailable("the FHIR server answered a search without a Bundle")
        entries = list(body.get("entry") or [])
        wants_top = "_count" in dict(parse_qsl(urlsplit(query).query))
        pages = 1
        following = None if wants_top else _next_link(body)
        while following is not None:
            if pages >= self.settings.max_pages:
                raise PrefetchUnavailable(
                    f"a search needs more than {self.settings.max_pages} pages"
                )
            if not server.same_origin(following):
                raise PrefetchUnavailable("a Bundle next link points away from the FHIR server")
            page = await self._get(client, following, read=False)
            if page is None or page.get("resourceType") != "Bundle":
                raise PrefetchUnavailable("a Bundle next link did not answer with a Bundle")
            entries.extend(page.get("entry") or [])
            pages += 1
            following = _next_link(page)
        return {"resourceType": "Bundle", "type": "searchset", "entry": entries}

    async def _get(self, client: httpx.AsyncClient, url: str, *, read: bool) -> Any:
        try:
            async with client.stream("GET", url) as response:
                if read and response.status_code in (404, 410):
                    return None
                if response.status_code != 200:
                    raise PrefetchUnavailable(
                        f"the FHIR server answered HTTP {response.status_code}"
                    )
                raw = bytearray()
                async for part in response.aiter_bytes():
                    raw += part
                    if len(raw) > MAX_PAGE_BYTES:
                        raise PrefetchUnavailable("a FHIR page was larger than 8 MiB")
        except httpx.HTTPError as exc:
            raise PrefetchUnavailable(
                f"the FHIR server could not be reached ({type(exc).__name__})"
            ) from None
        try:
            body = json.loads(raw)
        except ValueError:
            raise PrefetchUnavailable("the FHIR server answered with something not JSON") from None
        if not isinstance(body, dict):
            raise PrefetchUnavailable("the FHIR server answered with something not a resource")
        return body


def _next_link(bundle: Mapping[str, Any]) -> str | None:
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next":
            url = link.get("url")
            return url if isinstance(url, str) and url else None
    return None
