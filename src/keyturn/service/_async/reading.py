"""Reading keys: one key, an owner's keys, a key's history, an owner's access log.

Reads change nothing and decide nothing; another owner's key is reported as missing. Async
source of a generated twin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from keyturn.core import validation
from keyturn.core.lifecycle import Action
from keyturn.service._async.base import AsyncServiceBase

if TYPE_CHECKING:
    from collections.abc import Collection

    from keyturn.core.records import ApiKey, HistoryEntry, KeyEvent

#: The most entries one page of an access log holds (Deribit's ``count`` limit).
MAX_PAGE: Final = 10_000


class AsyncReading(AsyncServiceBase):
    """Reading keys (part of :class:`~keyturn.service.AsyncKeyService`)."""

    __slots__ = ()

    async def get(self, key_id: object, *, owner: object) -> ApiKey:
        """One key of ``owner`` (removed ones too)."""
        return await self._load(key_id, validation.owner(owner), Action.EDIT)

    async def list_keys(self, *, owner: object, include_removed: bool = False) -> list[ApiKey]:
        """The owner's keys, by id; live ones only unless ``include_removed``."""
        keys = await self.store.list_keys(validation.owner(owner))
        return [k for k in keys if include_removed or k.live]

    async def history(self, key_id: object, *, owner: object) -> list[HistoryEntry]:
        """The key's audit trail, oldest first."""
        key = await self.get(key_id, owner=owner)
        return await self.store.history(key.id)

    async def access_log(
        self,
        *,
        owner: object,
        events: Collection[str] | None = None,
        offset: object = 0,
        limit: object = 10,
    ) -> list[KeyEvent]:
        """One page of the history of every key ``owner`` ever had, removed ones too.

        Newest first; only ``events`` when given; at most 10,000 entries a page. The store
        answers from an index, so the cost does not grow with the account's history.
        """
        who = validation.owner(owner)
        first, count = validation.page(offset, limit, most=MAX_PAGE)
        chosen = None if events is None else frozenset(events)
        return await self.store.access_log(who, events=chosen, offset=first, limit=count)
