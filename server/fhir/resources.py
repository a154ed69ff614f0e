"""FHIR R4 resources from a request: found in whatever shape the client sent, validated.

Clients send a patient's record in the shapes EMRs and FHIR servers produce, so all of these
are accepted (`parse_resources`):

* a Bundle of any type (its entries' `resource`; Bundles inside it are opened too),
* a single resource,
* a list of resources and/or Bundles,
* an object keyed by resource type: `{"Patient": {...}, "Condition": [{...}, ...]}`
  (`resourceType` may then be left out of each resource).

Every resource is validated with the R4B models of fhir.resources (the package's default
models are R5, which reject R4 payloads; R4B reads R4 for every type used here). A refusal
is a 400 whose `param` points at the resource and field (`clinical.fhir.entry[2].resource
.status`) and whose message names the resource type and field, never a value: values are
patient data. Types clinserve does not read (Practitioner, Encounter, ...) are validated and
then ignored by the readers. Finally the resources must all be about one patient
(`server.fhir.subject`): a record that mixes two people is refused, not summarised.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError

from server.errors import InvalidRequest
from server.fhir.subject import Located, check_one_patient

DEFAULT_MAX_RESOURCES = 500
MAX_BUNDLE_DEPTH = 3  # a Bundle of Bundles of Bundles; deeper is a mistake or an attack

_TYPE_NAME = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_MISSING = frozenset({"missing", "model_field_validation.missing"})
_MAX_MESSAGE = 320


@dataclass(frozen=True)
class _Raw:
    """A resource's JSON as found, with where it was found."""

    param: str
    body: dict[str, Any]
    full_url: str | None = None


def parse_resources(
    payload: Any, param: str = "clinical.fhir", *, max_resources: int = DEFAULT_MAX_RESOURCES
) -> list[Resource]:
    """The validated resources in `payload`, in the order found (Bundles opened).

    Raises `InvalidRequest` (400, `param` pointing inside `payload`) for a shape that is not
    FHIR, an invalid resource, more than `max_resources` resources, or two patients.
    """
    walker = _Walker(param, max_resources)
    walker.collect(payload, param)
    located = [Located(raw.param, raw.full_url, _validate(raw)) for raw in walker.found]
    check_one_patient(located)
    return [item.resource for item in located]


class _Walker:
    """Finds the resources in a payload, counting them as it goes (the bound is checked
    before any validation work is spent)."""

    def __init__(self, root: str, limit: int) -> None:
        self.root = root
        self.limit = limit
        self.found: list[_Raw] = []

    def collect(self, value: Any, param: str) -> None:
        if isinstance(value, list):
            for index, item in enumerate(value):
                self.resource_or_bundle(item, f"{param}[{index}]", depth=0)
        elif isinstance(value, dict) and "resourceType" not in value:
            self.by_type(value, param)
        else:
            self.resource_or_bundle(value, param, depth=0)

    def by_type(self, value: dict[str, Any], param: str) -> None:
        """`{"Patient": {...}, "Condition": [...]}`: each key a resource type."""
        for key, items in value.items():
            if not (isinstance(key, str) and _resource_class(key)):
                raise InvalidRequest(
                    f"{param} must be a FHIR resource, a Bundle, a list of them, or an object "
                    "keyed by resource type; one of its keys is not an R4 resource type.",
                    param=param,
                )
            listed = isinstance(items, list)
            for index, item in enumerate(items if listed else [items]):
                at = f"{param}.{key}[{index}]" if listed else f"{param}.{key}"
                if isinstance(item, dict) and "resourceType" not in item:
                    item = {"resourceType": key, **item}
                if isinstance(item, dict) and item.get("resourceType") != key:
                    raise InvalidRequest(f"{at}: its resourceType is not {key}.", param=at)
                self.resource_or_bundle(item, at, depth=0)

    def resource_or_bundle(
        self, value: Any, param: str, depth: int, full_url: str | None = None
    ) -> None:
        if not isinstance(value, dict):
            raise InvalidRequest(f"{param} must be a FHIR resource (a JSON object).", param=param)
        if value.get("resourceType") == "Bundle":
            self.bundle(value, param, depth)
            return
        if len(self.found) >= self.limit:
            raise InvalidRequest(
                f"{self.root} holds more than {self.limit} resources; send the patient's "
                "current record, not their whole history.",
                param=self.root,
            )
        self.found.append(_Raw(param, value, full_url))

    def bundle(self, value: dict[str, Any], param: str, depth: int) -> None:
        if depth >= MAX_BUNDLE_DEPTH:
            raise InvalidRequest(
                f"{param}: Bundles nested more than {MAX_BUNDLE_DEPTH} deep.", param=param
            )
        entries = value.get("entry", [])
        envelope = {name: part for name, part in value.items() if name != "entry"}
        _validate(_Raw(param, envelope))  # type, timestamp, link...: the Bundle minus entries
        if not isinstance(entries, list):
            where = f"{param}.entry"
            raise InvalidRequest(f"{where}: Bundle.entry must be a list.", param=where)
        for index, entry in enumerate(entries):
            where = f"{param}.entry[{index}]"
            if not isinstance(entry, dict):
                raise InvalidRequest(f"{where}: a Bundle entry must be an object.", param=where)
            if "resource" in entry:  # an entry without one (a transaction's DELETE) has no data
                url = entry.get("fullUrl")
                url = url if isinstance(url, str) else None
                self.resource_or_bundle(entry["resource"], f"{where}.resource", depth + 1, url)


def _resource_class(name: str) -> type[Resource] | None:
    """The R4B model of a resource type; None for anything else (a datatype, a typo)."""
    if not _TYPE_NAME.match(name):
        return None
    try:
        model = get_fhir_model_class(name)
    except ValueError:
        return None
    return model if isinstance(model, type) and issubclass(model, Resource) else None


def _validate(raw: _Raw) -> Resource:
    type_name = raw.body.get("resourceType")
    if not isinstance(type_name, str) or not type_name:
        raise InvalidRequest(f"{raw.param} has no resourceType.", param=raw.param)
    model = _resource_class(type_name)
    if model is None:
        shown = type_name if _TYPE_NAME.match(type_name) else "its resourceType"
        raise InvalidRequest(
            f"{raw.param}: {shown} is not a FHIR R4 resource type.", param=raw.param
        )
    body = raw.body
    implied = _id_from_full_url(raw.full_url)
    if implied is not None and "id" not in body:
        body = {**body, "id": implied}  # so references by fullUrl (urn:uuid) can be resolved
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise _refusal(raw.param, type_name, exc) from None
    except (KeyError, TypeError, ValueError, AttributeError):
        # fhir.resources fails this way on some malformed contained resources; its message
        # may quote the input, so it is not passed on.
        raise InvalidRequest(
            f"{raw.param}: {type_name} is invalid (a contained resource or a nested value is "
            "malformed).",
            param=raw.param,
        ) from None


def _id_from_full_url(full_url: str | None) -> str | None:
    """`urn:uuid:X` or `https://server/fhir/Type/X` -> X, when X is a valid FHIR id."""
    if not full_url:
        return None
    tail = full_url.rsplit(":", 1)[-1] if full_url.startswith("urn:") else full_url
    candidate = tail.rstrip("/").rsplit("/", 1)[-1]
    return candidate if _FHIR_ID.match(candidate) else None


def _refusal(param: str, type_name: str, exc: ValidationError) -> InvalidRequest:
    error = exc.errors(include_url=False)[0]
    field = _field_path(error["loc"])
    where = f"{param}.{field}" if field and not field.startswith("[") else f"{param}{field}"
    subject = f"{type_name}.{field}".replace(".[", "[") if field else type_name
    return InvalidRequest(f"{where}: {subject} {_phrase(error)}", param=where)


def _field_path(loc: tuple[int | str, ...]) -> str:
    """('component', 0, 'code') -> 'component[0].code'; names a client made up (an unknown
    field) are shown only when they look like field names."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _FIELD_NAME.match(part):
            out += f".{part}" if out else part
        else:
            out += ".<field>" if out else "<field>"
    return out


def _phrase(error: Any) -> str:
    """What is wrong, in the library's words unless they quote the offending value."""
    kind = error.get("type", "")
    if kind in _MISSING:
        return "is required."
    if kind == "extra_forbidden":
        return "is not a field of this resource type."
    message = str(error.get("msg", "")).removeprefix("Value error, ").strip()
    if not message or any(leaf in message for leaf in _leaves(error.get("input"))):
        return "has an invalid value."
    return f"is invalid: {message[:_MAX_MESSAGE]}"


def _leaves(value: Any, budget: int = 200) -> Iterator[str]:
    """The string and number leaves of a JSON value (bounded), to keep them out of messages."""
    stack = [value]
    while stack and budget > 0:
        budget -= 1
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and len(item) >= 3:
            yield item
        elif isinstance(item, int | float | Decimal) and not isinstance(item, bool):
            text = str(item)
            if len(text) >= 3:
                yield text
