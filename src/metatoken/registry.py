"""Named registries for tasks, methods, measurements and condition kinds.

Each entry carries a one-line doc so `metatoken list` can describe it. Looking up an
unknown id raises a UserError that lists what is known.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from metatoken.errors import UserError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    id: str
    doc: str
    value: T


class Registry(Generic[T]):
    """A mapping from id to a documented value; `kind` names it in error messages."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, id: str, value: T, doc: str) -> T:
        if id in self._entries:
            raise ValueError(f"{self.kind} {id!r} is registered twice")
        self._entries[id] = Entry(id, doc.strip().splitlines()[0], value)
        return value

    def get(self, id: str) -> T:
        if id not in self._entries:
            known = ", ".join(sorted(self._entries)) or "none"
            raise UserError(f"unknown {self.kind} id {id!r} (known: {known})")
        return self._entries[id].value

    def __contains__(self, id: str) -> bool:
        return id in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(sorted(self._entries.values(), key=lambda e: e.id))
