"""What the sync and the async SQL stores share as the same objects: the row type, the duplicate.

Kept apart from the generated ``_async``/``_sync`` modules so that both stores raise and catch one
:class:`DuplicateRow` class, whichever driver found the duplicate.
"""

from __future__ import annotations

from typing import Any

from keyturn.core.errors import StoreError

#: A row as a driver returns it: a tuple of column values.
Row = tuple[Any, ...]


class DuplicateRow(StoreError):  # noqa: N818 (named for what happened, as keyturn errors are)
    """The database refused a row whose unique key exists (a store turns it into its meaning)."""

    def __init__(self) -> None:
        super().__init__("the database refused a duplicate row")
