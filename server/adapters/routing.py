"""Which adapter version answers a request for an alias, and which versions are in use.

Clients ask for `med`; the registry says `med@3` is active and `med@4` a 10% canary. The
split is a stable hash of the end user (else the request id), so one clinician sees one
version for the whole canary instead of answers that flip between messages. A version is
only chosen once some healthy worker has loaded it: right after a promotion, until the
reconciler has loaded the new version, requests keep going to the version active before.

The router also counts requests in flight per version, so the reconciler unloads a version
only once nothing this gateway sent to it is still running.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from server.adapters.registry import AdapterVersion
from server.errors import NoHealthyWorker


@dataclass(frozen=True)
class Alias:
    """One adapter name's routable versions, newest decision first."""

    name: str
    active: AdapterVersion | None
    canary: AdapterVersion | None
    previous: AdapterVersion | None  # active before the current one: the fallback
    servable: tuple[str, ...]  # every version a request may name explicitly (`med@2`)

    def card(self) -> dict[str, Any] | None:
        """The alias in `/v1/models` (vLLM's card shape plus a `clinical` object saying
        which versions it routes to); None until a version is active."""
        if self.active is None:
            return None
        canary = self.canary
        return {
            "id": self.name,
            "object": "model",
            "created": int(self.active.activated_at.timestamp()) if self.active.activated_at else 0,
            "owned_by": "clinserve",
            "root": self.active.served_name,
            "parent": self.active.base_model,
            "permission": [],
            "clinical": {
                "active": self.active.served_name,
                "canary": None
                if canary is None
                else {"version": canary.served_name, "percent": canary.canary_percent},
                "versions": list(self.servable),
            },
        }


def aliases_from(versions: Iterable[AdapterVersion]) -> dict[str, Alias]:
    by_name: dict[str, list[AdapterVersion]] = {}
    for version in versions:
        by_name.setdefault(version.name, []).append(version)
    table = {}
    for name, group in by_name.items():
        active = next((v for v in group if v.state == "active"), None)
        canary = next((v for v in group if v.state == "canary"), None)
        retired = [v for v in group if v.state == "retired" and v.activated_at is not None]
        previous = max(retired, key=lambda v: (v.activated_at, v.version), default=None)
        servable = tuple(v.served_name for v in group if v.state != "retired")
        table[name] = Alias(name, active, canary, previous, servable)
    return table


def in_canary(name: str, affinity: str, percent: int) -> bool:
    """Whether `affinity` (an end user or request id) falls in the first `percent` of 100
    buckets for `name`: stable across requests, gateways and restarts."""
    digest = hashlib.sha256(f"{name}\0{affinity}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < percent


class AdapterRouter:
    def __init__(self, loaded: Callable[[str], bool]) -> None:
        """`loaded(served_name)`: whether some healthy worker has that version loaded."""
        self._loaded = loaded
        self._aliases: dict[str, Alias] = {}
        self._in_flight: Counter[str] = Counter()

    def update(self, versions: Iterable[AdapterVersion]) -> None:
        self._aliases = aliases_from(versions)

    @property
    def aliases(self) -> dict[str, Alias]:
        return self._aliases

    def resolve(self, model: str, affinity: str) -> str | None:
        """The version to send a request for `model` to; None when `model` is not an adapter
        the registry knows (a base model: the pool decides)."""
        name, at, _ = model.partition("@")
        alias = self._aliases.get(name)
        if alias is None:
            return None
        if at:  # an explicit version, e.g. for an evaluation run against `med@4`
            if model not in alias.servable:
                return None  # retired or unknown: the pool answers 404 like vLLM
            return self._first_loaded(model, [model])
        if alias.active is None:
            raise NoHealthyWorker(f"Adapter `{name}` has no active version; promote one.")
        wanted = alias.active.served_name
        canary = alias.canary
        if canary is not None and canary.canary_percent:
            if in_canary(name, affinity, canary.canary_percent):
                wanted = canary.served_name
        fallbacks = [wanted, alias.active.served_name]
        if alias.previous is not None:
            fallbacks.append(alias.previous.served_name)
        return self._first_loaded(wanted, fallbacks)

    def _first_loaded(self, wanted: str, candidates: list[str]) -> str:
        for candidate in dict.fromkeys(candidates):
            if self._loaded(candidate):
                return candidate
        raise NoHealthyWorker(f"No worker has loaded adapter `{wanted}` yet; try again shortly.")

    @contextmanager
    def hold(self, served_name: str | None) -> Iterator[None]:
        """Count a request in flight on `served_name` for the block."""
        if served_name is None:
            yield
            return
        self._in_flight[served_name] += 1
        try:
            yield
        finally:
            self._in_flight[served_name] -= 1
            if not self._in_flight[served_name]:
                del self._in_flight[served_name]

    def in_flight(self, served_name: str) -> int:
        return self._in_flight[served_name]
