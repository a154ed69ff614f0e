"""Read a YAML recipe into a typed config: strict, with overrides from the command line.

One recipe file per run, as TRL's scripts take one config: the file is the record of what was
trained, so it is checked the way a compiler would check it. An unknown key is an error (a
misspelt `learning_rat` would otherwise train with the default and nobody would notice), a
value of the wrong type is an error naming the key and the type wanted, and `key=value`
overrides from the command line (`train.max_steps=5`, `lora.target_modules=[q_proj,v_proj]`)
are parsed as YAML scalars and checked the same way. `${VAR}` and `${VAR:-default}` in string
values are expanded from the environment, so one recipe serves several machines. Relative
paths are resolved by the stage's own code against the recipe file's folder (`Recipe.base`),
so a recipe and its data travel together and run from any working directory.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

T = TypeVar("T")
_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class RecipeError(ValueError):
    """A recipe that cannot be run as written; the message names the file and the key."""


def read_yaml(path: Path) -> dict[str, Any]:
    """The recipe file as a mapping (`RecipeError` if unreadable or not a mapping)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read the recipe: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of keys to values")
    return data


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """`data` with each `dotted.key=value` set (the value read as YAML: `5`, `true`, `[a, b]`)."""
    out = _deep_copy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise RecipeError(f"override {item!r}: write it as key=value, e.g. train.max_steps=5")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise RecipeError(f"override {item!r}: {part!r} is not a group of settings")
            node = child
        node[parts[-1]] = value
    return out


def expand_env(value: Any) -> Any:
    """`value` with `${VAR}` / `${VAR:-default}` replaced in every string inside it."""
    if isinstance(value, str):

        def lookup(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            found = os.environ.get(name)
            if found is None or (found == "" and default is not None):
                if default is None:
                    raise RecipeError(f"environment variable {name} is not set")
                return default
            return found

        return _ENV.sub(lookup, value)
    if isinstance(value, dict):
        return {key: expand_env(item) for key, item in value.items()}
    if isinstance(value, list):
        return [expand_env(item) for item in value]
    return value


def build(cls: type[T], data: Mapping[str, Any], where: str = "") -> T:
    """An instance of the dataclass `cls` from `data`, every key and type checked."""
    if not isinstance(data, Mapping):
        raise RecipeError(f"{where or 'recipe'}: expected a group of settings, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise RecipeError(f"{_at(where, unknown[0])}: unknown setting; {_choices(sorted(fields))}")
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for name, field in fields.items():
        if name in data:
            values[name] = _convert(hints[name], data[name], _at(where, name))
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise RecipeError(f"{_at(where, name)}: required setting is missing")
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"{where or 'recipe'}: {exc}") from None


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(option, value, where)
            except RecipeError as exc:
                errors.append(str(exc))
        raise RecipeError(errors[0] if len(errors) == 1 else f"{where}: {value!r} fits no type")
    if origin is Literal:
        if value not in args:
            raise RecipeError(f"{where}: {value!r} is not allowed; {_choices(args)}")
        return value
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where)  # type: ignore[arg-type]
    if origin in (list, tuple) or hint in (list, tuple):
        if not isinstance(value, list | tuple):
            raise RecipeError(f"{where}: expected a list, got {value!r}")
        item = args[0] if args else Any
        items = [_convert(item, v, f"{where}[{n}]") for n, v in enumerate(value)]
        return tuple(items) if (origin or hint) is tuple else items
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise RecipeError(f"{where}: expected a mapping, got {value!r}")
        key_type, item = args if args else (Any, Any)
        return {
            _convert(key_type, k, where): _convert(item, v, f"{where}.{k}")
            for k, v in value.items()
        }
    return _scalar(hint, value, where)


def _scalar(hint: Any, value: Any, where: str) -> Any:
    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise RecipeError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecipeError(f"{where}: expected a whole number, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
            return float(value)  # YAML 1.1 reads `1e-3` (no dot) as text
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RecipeError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise RecipeError(f"{where}: expected text, got {value!r}")
        return str(value)
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise RecipeError(f"{where}: expected a path, got {value!r}")
        return Path(value)
    raise RecipeError(f"{where}: settings of type {hint} cannot be read from a recipe")


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _choices(options: Sequence[Any]) -> str:
    return "one of: " + ", ".join(str(option) for option in options)


def _deep_copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {key: _deep_copy(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_deep_copy(value) for value in data]
    return data
