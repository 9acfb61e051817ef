"""``--set approach.field=value`` overrides of approach config dataclasses, type-checked.

``--set task.field=value`` sets an option of the task instead: a data-file task's
(``harness.tasks.data_file.DataFileConfig``), or a built-in task's only one, ``metric``.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Iterable
from typing import Any

from harness.core.registry import Registry

TASK = "task"
"""The prefix of task options: ``--set task.labels=negative,positive``."""

class OverrideError(ValueError):
    """A ``--set`` value that names no field, does not fit the field's type or is refused by
    the config (its :class:`OptionError` then names the approach and the value)."""


class OptionError(ValueError):
    """An option value a config refuses, raised by its ``__post_init__``.

    ``field`` is the option's name within the config (``r``); the config does not know its
    approach, so :func:`build_config` adds it: ``--set 'lora.r=-1': must be ...``.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field, message)
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def check_option(ok: bool, field: str, message: str) -> None:
    """Raise :class:`OptionError` for ``field`` unless ``ok`` (for a config's ``__post_init__``)."""
    if not ok:
        raise OptionError(field, message)


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
    if origin is dict:
        pairs = {}
        for part in (p.strip() for p in text.split(",") if p.strip()):
            key, sep, value = part.partition("=")
            if not sep:
                raise OverrideError(f"{where}: expected name=value pairs separated by commas, "
                                    f"e.g. input=sentence,output=label; got {part!r}")
            pairs[_convert(key.strip(), args[0], where)] = _convert(value.strip(), args[1], where)
        return pairs
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


def _task_options(task: Any, item: str) -> type:
    """The class whose ``Config`` types ``task.`` options: the task's, if it has options."""
    if getattr(task, "Config", None) is None:
        named = f"; {task.name!r} is a built-in task and has none" if task is not None else ""
        raise OverrideError(f"--set {item!r}: task options apply to data files (--task=PATH or "
                            f"hf:<id>){named}")
    return task


def parse_overrides(items: Iterable[str], approaches: Registry,
                    task: Any = None) -> dict[str, dict[str, Any]]:
    """Turn ``["few-shot.k=8"]`` into ``{"few-shot": {"k": 8}}``, checking names and types.

    ``task.field=value`` items are options of ``task`` (the resolved task or its class, whose
    ``Config`` dataclass types them), returned under the key ``"task"``; a task without a
    ``Config`` (a built-in task, or none given) refuses them.
    """
    result: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        name, dot, field_name = key.strip().rpartition(".")
        if not sep or not dot:
            raise OverrideError(f"--set {item!r}: expected approach.field=value, e.g. few-shot.k=8")
        cls = _task_options(task, item) if name == TASK else approaches.get(name)
        fields = {f.name: f for f in dataclasses.fields(cls.Config)}
        if name == TASK and field_name not in fields and len(fields) == 1:
            raise OverrideError(f"--set {item!r}: task options apply to data files (--task=PATH "
                                f"or hf:<id>); {task.name!r} is a built-in task and takes only "
                                "task.metric")
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


def option_text(value: Any) -> str:
    """``value`` written as on the command line (``q_proj,v_proj``, ``none``, ``true``)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(map(option_text, value))
    if isinstance(value, dict):
        return ",".join(f"{option_text(k)}={option_text(v)}" for k, v in value.items())
    return str(value)


def _default(config: type, name: str) -> Any:
    """The default of field ``name`` of the dataclass ``config`` (``?`` if it has none)."""
    for field in dataclasses.fields(config):
        if field.name == name:
            if field.default is not dataclasses.MISSING:
                return field.default
            if field.default_factory is not dataclasses.MISSING:
                return field.default_factory()
    return "?"


def build_config(cls: type, overrides: dict[str, Any], name: str | None = None) -> Any:
    """An instance of ``cls.Config`` with ``overrides`` applied.

    A value the config refuses becomes an :class:`OverrideError` naming the option as the
    user types it: ``--set 'lora.r=-1': must be a positive integer``; if the refused field
    kept its default (a rule between two fields), the message says so. ``name`` is the
    option prefix (default ``cls.name``; ``task`` for a task's options).
    """
    prefix = name or cls.name
    try:
        return cls.Config(**overrides)
    except OptionError as error:
        if error.field in overrides:
            item = f"{prefix}.{error.field}={option_text(overrides[error.field])}"
            where = f"--set {item!r}"
        else:
            item = f"{prefix}.{error.field}={option_text(_default(cls.Config, error.field))}"
            where = f"{item!r} (the default)"
        raise OverrideError(f"{where}: {error.message}") from None
