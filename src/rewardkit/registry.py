"""Name -> object registries for losses, heads, benchmarks and scorers.

Entries are either objects registered with a decorator or lazy ``"module:attr"`` strings resolved on
first use, so that importing a registry (e.g. from ``serve``) never imports training code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from rewardkit.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of objects of one kind; duplicate names are rejected."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@LOSSES.register("bt")``."""

        def add(obj: T) -> T:
            self._add(name, obj)
            return obj

        return add

    def register_lazy(self, name: str, target: str) -> None:
        """Register ``"package.module:attr"`` to be imported on first :meth:`get`."""
        if ":" not in target:
            raise ValueError(f"lazy {self.kind} entry {name!r} must look like 'module:attr', got {target!r}")
        self._add(name, target)

    def _add(self, name: str, obj: T | str) -> None:
        if name in self._entries:
            raise KeyError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = obj

    def get(self, name: str) -> T:
        try:
            entry = self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; known: {known}") from None
        if isinstance(entry, str):
            module, _, attr = entry.partition(":")
            entry = getattr(importlib.import_module(module), attr)
            self._entries[name] = entry
        return entry  # type: ignore[return-value]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
