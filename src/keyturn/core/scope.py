"""Deribit's access-scope grammar for a key's ``max_scope``: ``resource:level`` tokens.

A :class:`Scope` is parsed once, at the edge, and carried as a value; it prints in one canonical
order so that equal scopes compare and store equal. This module only parses and compares.
"""

from __future__ import annotations

import enum
from typing import Final, Self

import attrs

from keyturn.core.errors import InvalidInput

RESOURCES: Final = ("account", "trade", "wallet", "block_trade", "block_rfq", "custody")
MAX_SCOPE_LENGTH: Final = 512


class Level(enum.IntEnum):
    """Access to one resource, ordered so that a higher level covers a lower one."""

    NONE = 0
    READ = 1
    READ_WRITE = 2

    @property
    def label(self) -> str:
        """The level as Deribit spells it."""
        return self.name.lower()


_LEVELS: Final = {lvl.label: lvl for lvl in Level}


@attrs.frozen(repr=False)
class Scope:
    """A key's maximal access: a level per resource. Resources not named are ``none``."""

    levels: tuple[tuple[str, Level], ...]

    @classmethod
    def parse(cls, text: object, *, field: str = "max_scope") -> Self:
        """Parse ``"account:read trade:read_write"``; raise :class:`InvalidInput` if malformed."""
        if not isinstance(text, str):
            raise InvalidInput(field, f"must be a string, not {type(text).__name__}")
        if len(text) > MAX_SCOPE_LENGTH:
            raise InvalidInput(field, f"longer than {MAX_SCOPE_LENGTH} characters")
        tokens = text.split()
        if not tokens:
            raise InvalidInput(field, 'needs at least one "resource:level", e.g. "account:read"')
        seen: dict[str, Level] = {}
        for token in tokens:
            resource, sep, level = token.partition(":")
            if not sep or resource not in RESOURCES or level not in _LEVELS:
                raise InvalidInput(
                    field,
                    f"{token[:40]!r} is not resource:level with resource one of "
                    f"{', '.join(RESOURCES)} and level one of none, read, read_write",
                )
            if resource in seen:
                raise InvalidInput(field, f"resource {resource!r} named twice")
            seen[resource] = _LEVELS[level]
        return cls(tuple((r, seen[r]) for r in RESOURCES if r in seen))

    def level(self, resource: str) -> Level:
        """The level granted for ``resource`` (``none`` when not named)."""
        return dict(self.levels).get(resource, Level.NONE)

    def covers(self, other: Scope) -> bool:
        """Whether every resource of ``other`` is granted here at least as high."""
        return all(self.level(r) >= lvl for r, lvl in other.levels)

    def __repr__(self) -> str:
        return f"Scope({str(self)!r})"

    def __str__(self) -> str:
        return " ".join(f"{r}:{lvl.label}" for r, lvl in self.levels)
