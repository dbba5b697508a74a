"""Name -> callable registries with "did you mean" errors (one registry per axis)."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """An unknown registry name; the message lists close matches and all known names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Registry(Generic[T]):
    """A named mapping from string to object; `register` is usable as a decorator."""

    def __init__(self, axis: str) -> None:
        self.axis = axis
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None):
        """Register `obj` under `name`, or return a decorator that does."""
        if obj is not None:
            self._add(name, obj)
            return obj

        def decorator(fn: T) -> T:
            self._add(name, fn)
            return fn

        return decorator

    def _add(self, name: str, obj: T) -> None:
        if name in self._items:
            raise ValueError(f"{self.axis} {name!r} is registered twice")
        self._items[name] = obj

    def __getitem__(self, name: str) -> T:
        if name not in self._items:
            raise UnknownNameError(unknown_name_message(self.axis, name, list(self._items)))
        return self._items[name]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def names(self) -> list[str]:
        return list(self._items)


def unknown_name_message(axis: str, name: str, known: list[str]) -> str:
    """'unknown objective 'dcoo' (did you mean 'dco'?); known: db, dco'."""
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    return f"unknown {axis} {name!r}{hint}; known: {', '.join(sorted(known))}"
