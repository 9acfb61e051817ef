"""``--set approach.field=value`` overrides of approach config dataclasses, type-checked."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Iterable
from typing import Any

from harness.core.registry import Registry


class OverrideError(ValueError):
    """A ``--set`` value that names no field or does not fit the field's type."""


def _convert(text: str, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if text.lower() in ("none", "null") and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(text, inner[0], where)
    if origin in (list, tuple):
        items = [_convert(part.strip(), args[0], where) for part in text.split(",") if part.strip()]
        return items if origin is list else tuple(items)
    if origin is typing.Literal:
        if text not in args:
            raise OverrideError(f"{where}: {text!r} is not one of {', '.join(map(str, args))}")
        return text
    if hint is bool:
        lowered = text.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise OverrideError(f"{where}: expected true or false, got {text!r}")
    if hint in (int, float):
        try:
            return hint(text)
        except ValueError:
            raise OverrideError(f"{where}: expected {hint.__name__}, got {text!r}") from None
    return text


def parse_overrides(items: Iterable[str], approaches: Registry) -> dict[str, dict[str, Any]]:
    """Turn ``["few-shot.k=8"]`` into ``{"few-shot": {"k": 8}}``, checking names and types."""
    result: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        name, dot, field_name = key.strip().rpartition(".")
        if not sep or not dot:
            raise OverrideError(f"--set {item!r}: expected approach.field=value, e.g. few-shot.k=8")
        cls = approaches.get(name)
        fields = {f.name: f for f in dataclasses.fields(cls.Config)}
        if field_name not in fields:
            close = difflib.get_close_matches(field_name, fields, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            known = ", ".join(fields) or "(it has no options)"
            raise OverrideError(
                f"--set {item!r}: {name} has no option {field_name!r}.{hint} Options: {known}."
            )
        hint_type = typing.get_type_hints(cls.Config)[field_name]
        result.setdefault(name, {})[field_name] = _convert(
            value.strip(), hint_type, f"--set {item!r}"
        )
    return result


def build_config(cls: type, overrides: dict[str, Any]) -> Any:
    """An instance of ``cls.Config`` with ``overrides`` applied."""
    return dataclasses.replace(cls.Config(), **overrides)
