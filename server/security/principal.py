"""The caller of one request: the API key (and so the tenant) plus the end user behind it.

Hospital front ends call with one service key for many clinicians. Open WebUI forwards who
the clinician is in `X-OpenWebUI-User-Id` (with ENABLE_FORWARD_USER_INFO_HEADERS); other
clients can use the OpenAI `user` field. Only the opaque id is kept (for the audit trail),
never the name or e-mail headers that come with it.

An EMR calling the CDS Hooks routes with its signed JWT has no key: it is a `CdsClient`, the
issuer and client id the token proved, mapped to the tenant the deployment configured for
that issuer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from server.db.keys import SCOPES, KeyRecord
from server.errors import InvalidRequest
from server.settings import IntakeMode

END_USER_HEADER = "x-openwebui-user-id"
_END_USER = re.compile(r"[A-Za-z0-9._:@+=/-]{1,256}")


@dataclass(frozen=True)
class CdsClient:
    """A CDS client (EMR) authenticated by its JWT: `issuer` is the token's `iss`, `client_id`
    its `sub`, and the tenant and scopes those the deployment grants that issuer."""

    issuer: str
    client_id: str
    tenant_id: int
    tenant: str
    scopes: frozenset[str]

    @property
    def label(self) -> str:
        """Who called, for the audit row: `<sub>@<iss>`."""
        return f"{self.client_id}@{self.issuer}"


@dataclass(frozen=True)
class Principal:
    """An API key's holder, or an EMR's `client` (never both); neither only when
    authentication is switched off (anonymous, every scope)."""

    key: KeyRecord | None
    end_user: str | None = None
    client: CdsClient | None = None

    @property
    def scopes(self) -> frozenset[str]:
        if self.key is not None:
            return self.key.scopes
        if self.client is not None:
            return self.client.scopes
        return frozenset(SCOPES)

    @property
    def tenant_id(self) -> int | None:
        if self.key is not None:
            return self.key.tenant_id
        return self.client.tenant_id if self.client is not None else None

    @property
    def key_id(self) -> int | None:
        return self.key.key_id if self.key is not None else None

    @property
    def intake_mode(self) -> IntakeMode | None:
        """The key's default intake mode; None: the deployment's."""
        return self.key.intake_mode if self.key is not None else None


def end_user_from(headers: Mapping[str, str]) -> str | None:
    """The forwarded end-user id, or None; a malformed one is a 400, not silently dropped
    (an audit trail that quietly loses who asked is worse than a refused request)."""
    value = headers.get(END_USER_HEADER)
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not _END_USER.fullmatch(value):
        raise InvalidRequest(
            "X-OpenWebUI-User-Id must be 1-256 characters of letters, digits and ._:@+=/-",
            param=END_USER_HEADER,
        )
    return value
