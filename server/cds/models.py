"""CDS Hooks 2.0 wire models: the hook request an EMR sends and the cards it gets back.

Requests allow extra fields (the spec reserves `extension`, and EMRs send their own); the
hook-specific `context` is validated separately, once the service (and so its hook) is
known, so a patient-view context is never held to order-sign's rules. Responses follow the
spec's rule that optional fields are omitted rather than null or empty
(`CdsResponse.to_json`).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

FhirId = Annotated[str, Field(pattern=r"^[A-Za-z0-9\-.]{1,64}$")]
"""A FHIR logical id (R4 `id` datatype); it is pasted into prefetch queries, so its
alphabet is checked before any URL is built from it."""

Indicator = Literal["info", "warning", "critical"]
INDICATOR_RANK: dict[str, int] = {"critical": 0, "warning": 1, "info": 2}

SUMMARY_MAX = 139
"""The spec's "<140-character" summary."""


def check_base_url(value: str) -> str:
    """A FHIR base URL: http(s), a host, no credentials, query or fragment. Whether plain
    http is acceptable is the fetcher's decision (it knows the deployment's settings)."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises on a malformed port)
    except ValueError:
        raise ValueError("not a URL") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError("must not carry credentials, a query or a fragment")
    return value.rstrip("/")


class _Request(BaseModel):
    model_config = ConfigDict(extra="allow")


class FhirAuthorization(_Request):
    """An OAuth 2.0 bearer token the EMR issued to this service for its FHIR server."""

    access_token: SecretStr = Field(min_length=1, max_length=8192)  # never in a repr or log
    token_type: Literal["Bearer"]
    expires_in: int = Field(ge=0)
    scope: str
    subject: str


class HookRequest(_Request):
    hook: str = Field(min_length=1, max_length=128)
    hookInstance: uuid.UUID  # noqa: N815 (the spec's field names)
    fhirServer: str | None = None  # noqa: N815
    fhirAuthorization: FhirAuthorization | None = None  # noqa: N815
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None

    @field_validator("fhirServer")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        return None if value is None else check_base_url(value)

    @model_validator(mode="after")
    def _server_with_token(self) -> HookRequest:
        if self.fhirAuthorization is not None and self.fhirServer is None:
            raise ValueError("fhirServer is required when fhirAuthorization is given")
        return self


class PatientViewContext(_Request):
    userId: str = Field(min_length=1, max_length=256)  # noqa: N815
    patientId: FhirId  # noqa: N815
    encounterId: FhirId | None = None  # noqa: N815


class OrderSignContext(PatientViewContext):
    draftOrders: dict[str, Any]  # noqa: N815  (a FHIR Bundle, read by server.fhir)


class Coding(BaseModel):
    system: str
    code: str
    display: str


class Source(BaseModel):
    label: str
    url: str | None = None
    icon: str | None = None
    topic: Coding | None = None


class Action(BaseModel):
    type: Literal["create", "update", "delete"]
    description: str
    resource: dict[str, Any] | None = None
    resourceId: str | None = None  # noqa: N815


class Suggestion(BaseModel):
    label: str
    uuid: str = Field(default_factory=lambda: str(uuid.uuid4()))
    isRecommended: bool | None = None  # noqa: N815
    actions: list[Action] = Field(min_length=1)


class Link(BaseModel):
    label: str
    url: str
    type: Literal["absolute", "smart"] = "absolute"


class Card(BaseModel):
    """Optional lists are None rather than empty (the spec forbids empty arrays)."""

    uuid: str = Field(default_factory=lambda: str(uuid.uuid4()))
    summary: str = Field(min_length=1, max_length=SUMMARY_MAX)
    detail: str | None = None
    indicator: Indicator
    source: Source
    suggestions: list[Suggestion] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None  # noqa: N815
    overrideReasons: list[Coding] | None = None  # noqa: N815
    links: list[Link] | None = None

    @field_validator("suggestions", "overrideReasons", "links")
    @classmethod
    def _none_if_empty(cls, value: list[Any] | None) -> list[Any] | None:
        return value or None

    @model_validator(mode="after")
    def _selection_with_suggestions(self) -> Card:
        if self.suggestions and self.selectionBehavior is None:
            raise ValueError("selectionBehavior is required when there are suggestions")
        return self


class CdsResponse(BaseModel):
    cards: list[Card]

    def to_json(self) -> dict[str, Any]:
        """Without null optional fields (the spec forbids them); `cards` stays even when
        empty, which is how "no decision support" is said."""
        return self.model_dump(mode="json", exclude_none=True)


def shorten(text: str, limit: int = SUMMARY_MAX) -> str:
    """`text` in at most `limit` characters, cut at a word with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0] or text[: limit - 1]
    return cut.rstrip(" ,;:-") + "…"
