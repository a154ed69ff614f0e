"""What an audit row says, and the keyed hash that chains it to the row before.

A row's hash is HMAC-SHA256 over the previous row's hash and the row's canonical JSON (sorted
keys, no whitespace, timestamps as ISO-8601 UTC with microseconds). Chaining makes an edit, an
insertion or a deletion visible; keying the hash with a server secret (derived from the API-key
pepper, which lives outside the database) means someone with write access to the database
alone cannot rebuild a consistent chain after tampering, as they could with a plain hash.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

CHAIN_KEY_CONTEXT = b"clinserve audit chain v1"


def chain_key(pepper: bytes) -> bytes:
    """The audit chain's HMAC key, derived from (and so backed up with) the key pepper."""
    return hmac.new(pepper, CHAIN_KEY_CONTEXT, hashlib.sha256).digest()


@dataclass(frozen=True)
class AuditRecord:
    """One request as the audit trail records it. The texts are optional passengers: kept
    (outside the chain) only for tenants with content retention, dropped for the rest."""

    created_at: datetime
    request_id: str
    route: str
    status: int
    latency_ms: float
    completion_id: str | None = None
    tenant_id: int | None = None
    key_id: int | None = None
    end_user: str | None = None
    client: str | None = None  # a CDS client that called with its JWT: `<sub>@<iss>`
    model: str | None = None
    adapter: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_sha256: str | None = None
    response_sha256: str | None = None
    citations: list[str] = field(default_factory=list)
    intake_mode: str | None = None
    intake_subcategories: list[str] = field(default_factory=list)
    red_flags: list[str] = field(default_factory=list)
    prompt_text: str | None = field(default=None, repr=False)
    response_text: str | None = field(default=None, repr=False)

    def stripped(self) -> AuditRecord:
        """Only who, when, where and the outcome: for a record the database refused."""
        return replace(
            self,
            completion_id=None,
            end_user=None,
            model=None,
            adapter=None,
            citations=[],
            intake_subcategories=[],
            red_flags=[],
            prompt_text=None,
            response_text=None,
        )

    def chained_fields(self) -> dict[str, Any]:
        """Every field the chain commits to (the texts are not among them)."""
        return {name: getattr(self, name) for name in _CHAINED_RECORD_FIELDS}


_CHAINED_RECORD_FIELDS = tuple(
    name for name in AuditRecord.__dataclass_fields__ if not name.endswith("_text")
)

CHAINED_COLUMNS: tuple[str, ...] = (
    *_CHAINED_RECORD_FIELDS,
    "seq",
    "content_retained",
    "prev_hash",
)
"""The `audit_events` columns a row's hash covers: all but `id` and `row_hash`."""


ADDED_LATER: frozenset[str] = frozenset({"client"})
"""Columns added after rows were first chained: left out of the canonical form while NULL, so
every row written before a column existed hashes (and verifies) exactly as it did."""


def canonical(fields: dict[str, Any]) -> bytes:
    def encode(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if isinstance(value, float):
            return repr(round(value, 3))  # stored as a float; compared as exact text
        return value

    encoded = {
        name: encode(value)
        for name, value in fields.items()
        if value is not None or name not in ADDED_LATER
    }
    return json.dumps(encoded, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def row_hash(key: bytes, prev_hash: str, fields: dict[str, Any]) -> str:
    """The hash of a row with `fields` (exactly `CHAINED_COLUMNS`) following `prev_hash`."""
    return hmac.new(key, prev_hash.encode() + b"\n" + canonical(fields), hashlib.sha256).hexdigest()
