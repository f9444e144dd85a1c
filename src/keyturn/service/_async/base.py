"""The service's ports and settings, and the steps every request shares.

:class:`AsyncServiceBase` holds what every part of the service uses: the ports, the policy, the
logger. Its helpers load a key for its owner, answer the core's needs through the code verifier,
seal the codes a change queues, log a written change and deliver its notifications. The parts of
the service (:mod:`.confirm`, :mod:`.lifecycle`, :mod:`.credentials`, :mod:`.security`,
:mod:`.reading`) build on it; :class:`~keyturn.service.AsyncKeyService` joins them. No rule is
decided here. This module is the async source: ``scripts/unasync.py`` writes its blocking twin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import attrs

from keyturn._log import get_logger
from keyturn.core import validation
from keyturn.core.commands import CheckCode, SendCode
from keyturn.core.errors import KeyNotFound, KeyturnError
from keyturn.core.policy import Policy
from keyturn.core.records import Delivery
from keyturn.service._async.relay import AsyncOutboxRelay

if TYPE_CHECKING:
    from collections.abc import Sequence

    from keyturn.core.commands import Need
    from keyturn.core.lifecycle import Action
    from keyturn.core.records import ApiKey, Change, Notification
    from keyturn.crypto.hashing import SecretHasher
    from keyturn.crypto.sealing import CodeSeal, SecretBox
    from keyturn.ports import AsyncCodeVerifier, AsyncKeyStore, AsyncNotifier, Clock, IssuedCode
    from keyturn.ports.common import SecondFactor


def _relay(service: AsyncServiceBase) -> AsyncOutboxRelay:
    return AsyncOutboxRelay(
        store=service.store,
        notifier=service.notifier,
        clock=service.clock,
        code_seal=service.code_seal,
        logger=service.logger,
    )


#: Attempts at a write that lost a race before the conflict is handed to the caller.
WRITE_ATTEMPTS: Final = 4


@attrs.define(kw_only=True)
class AsyncServiceBase:
    """The ports and settings of the service (see :class:`~keyturn.service.AsyncKeyService`)."""

    store: AsyncKeyStore
    verifier: AsyncCodeVerifier
    notifier: AsyncNotifier
    clock: Clock
    secret_hasher: SecretHasher
    code_seal: CodeSeal
    policy: Policy = attrs.field(factory=Policy)
    secret_box: SecretBox | None = None
    second_factor: SecondFactor | None = None
    logger: Any = attrs.field(factory=get_logger)
    deliver_inline: bool = True
    relay: AsyncOutboxRelay = attrs.field(default=attrs.Factory(_relay, takes_self=True))

    # --- what every request shares ----------------------------------------------------------

    async def _load(self, key_id: object, owner: str, action: Action) -> ApiKey:
        """The key ``key_id`` of ``owner``; another owner's key is reported as missing."""
        key = await self.store.get(validation.key_id(key_id))
        if key is None or key.owner != owner:
            raise KeyNotFound(key_id, action=action.value)
        return key

    def _given(
        self, loaded: ApiKey | None, key_id: object, owner: str, action: Action
    ) -> ApiKey | None:
        """``loaded`` if it is the key ``key_id`` of ``owner``; any other is reported as missing."""
        if loaded is not None and (loaded.owner != owner or loaded.id != validation.key_id(key_id)):
            raise KeyNotFound(key_id, action=action.value)
        return loaded

    async def _answer(self, need: Need) -> IssuedCode | bool:
        """Answer what the core asked for, through the code verifier."""
        if isinstance(need, SendCode):
            return await self.verifier.issue(subject=need.subject, owner=need.owner)
        assert isinstance(need, CheckCode)  # noqa: S101 (the two needs there are)
        return await self.verifier.check(
            subject=need.subject, ref=need.ref, candidate=need.candidate
        )

    def _sealed(self, change: Change) -> Change:
        """``change`` with the codes it queues sealed, as the outbox keeps them."""
        if not any(n.code is not None for n in change.notifications):
            return change
        notes = tuple(self.code_seal.seal_code(n) for n in change.notifications)
        return attrs.evolve(change, notifications=notes)

    async def _committed(self, change: Change) -> ApiKey:
        """Log each step of a written change and deliver its notifications; the key as stored.

        ``change`` is as written (its codes sealed); with ``deliver_inline`` the store wrote its
        notifications claimed for this request (``claim=True``).
        """
        for h in change.history:
            self.logger.info(
                h.event,
                key_id=change.key.id,
                owner=change.key.owner,
                action=h.action.value,
                from_state=h.from_state.value if h.from_state else None,
                to_state=h.to_state.value,
                actor=h.actor,
                version=h.version,
            )
        await self._deliver(change.notifications)
        return change.key

    async def _deliver(self, notifications: Sequence[Notification]) -> None:
        """Best effort: deliver this request's own notifications (stored claimed) now."""
        if not (self.deliver_inline and notifications):
            return
        try:
            await self.relay.deliver(
                [Delivery(n, attempts=1) for n in notifications], written_now=True
            )
        except KeyturnError as e:  # the change is written: its claim lapses and the relay retries
            self.logger.warning("inline_delivery_unmarked", error=type(e).__name__)

    def _actor(self, actor: object, owner: object) -> str:
        return validation.actor(owner if actor is None else actor)
