"""Turn pydantic validation failures into the gateway's 400 with the offending `param`."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from server.errors import InvalidRequest

Model = TypeVar("Model", bound=BaseModel)


def validate(model: type[Model], body: Any) -> Model:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        param = _param(first["loc"])
        message = first["msg"]
        raise InvalidRequest(f"{param}: {message}" if param else message, param=param) from None


def only_fields(options: dict[str, Any], allowed: set[str], param: str) -> None:
    """Refuse unknown keys in a `clinical` option object (a typo must not be ignored)."""
    unknown = set(options) - allowed
    if unknown:
        raise InvalidRequest(
            f"{param} has unknown fields: {', '.join(sorted(unknown))}.", param=param
        )


def one_of(value: Any, choices: tuple[str, ...], param: str) -> Any:
    if value not in choices:
        raise InvalidRequest(f"{param} must be one of {', '.join(choices)}.", param=param)
    return value


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "dict", "list", "none"})


def _param(loc: tuple[int | str, ...]) -> str | None:
    """('messages', 0, 'role') -> 'messages[0].role', skipping pydantic's union-branch tags."""
    out = ""
    previous: int | str | None = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _TYPE_TAGS or any(c in part for c in "[(-") or part == previous:
            continue
        else:
            out += f".{part}" if out else part
        previous = part
    return out or None
