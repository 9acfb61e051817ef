"""A typed name registry with "did you mean" errors (the lm-eval registry idea, minus the
double registration: plugins register through hooks only)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """A name that is not registered; the message lists close matches and everything known."""

    def __str__(self) -> str:
        return str(self.args[0])


class DuplicateNameError(ValueError):
    """Two plugins registered the same name."""


class DeclarationError(TypeError):
    """A plugin registered something that is not a valid class of its registry's kind."""


class Registry(Generic[T]):
    """Maps unique names to registered classes; ``kind`` names them in error messages;
    ``check`` (optional) says why a class given to :meth:`add` cannot be registered."""

    def __init__(self, kind: str, check: Callable[[Any], str | None] | None = None) -> None:
        self.kind = kind
        self.check = check
        self._items: dict[str, T] = {}

    def add(self, cls: T) -> None:
        """Register ``cls`` under its ``name`` after checking it (what plugins' ``register``
        calls); :class:`DeclarationError` says what is wrong with it."""
        problem = self.check(cls) if self.check else None
        if problem:
            raise DeclarationError(f"cannot register {self.kind} {cls!r}: {problem}")
        self.register(cls.name, cls)  # type: ignore[attr-defined]

    def register(self, name: str, item: T) -> None:
        if name in self._items and self._items[name] is not item:
            raise DuplicateNameError(
                f"two plugins register the {self.kind} {name!r}: {self._items[name]!r} and "
                f"{item!r}; rename one of them"
            )
        self._items[name] = item

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, self._items, n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        known = ", ".join(sorted(self._items)) or "(none)"
        return f"unknown {self.kind} {name!r}.{hint} Registered: {known}."

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
