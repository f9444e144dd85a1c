"""The ports that do I/O, written once as coroutines: store, code verifier, notifier.

A *port* is the shape of a dependency as the service sees it; an *adapter* is one way to fill it.
These protocols are the async service's; their blocking twins (``KeyStore``, ``CodeVerifier``,
``Notifier``), the sync service's, are generated from this module by ``scripts/unasync.py``.
This module defines shapes only, and must not import any adapter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from datetime import datetime

    from keyturn.core.records import (
        ApiKey,
        Challenge,
        Change,
        Delivery,
        HistoryEntry,
        KeyEvent,
        LoadedSession,
        Notification,
        SecurityKey,
        Session,
    )
    from keyturn.ports.common import IssuedCode


class AsyncCodeVerifier(Protocol):
    """Issues one-time codes and checks candidates against them.

    ``subject`` binds a code to what it is for (a key and purpose, or a challenge): a code issued
    for one subject never checks for another. Expiry, attempt counting and "only the latest code"
    are keyturn's rules, enforced by the domain; a verifier only answers "does this match".
    """

    async def issue(self, *, subject: str, owner: str) -> IssuedCode:
        """Make a fresh code for ``subject``; deliver it to ``owner`` if this verifier sends."""
        ...

    async def check(self, *, subject: str, ref: str, candidate: str) -> bool:
        """Whether ``candidate`` is the code issued as ``ref`` for ``subject`` (constant time)."""
        ...

    def is_well_formed(self, candidate: str) -> bool:
        """Whether ``candidate`` has the shape of a code at all (checked before any lookup)."""
        ...


class AsyncNotifier(Protocol):
    """Delivers a notification to a person. Raises on failure, so the outbox retries it."""

    async def deliver(self, notification: Notification) -> None:
        """Send ``notification`` to its owner."""
        ...


class AsyncKeyStore(Protocol):
    """Keeps keys, their history, confirmation challenges and the notification outbox.

    Every write is atomic: a :class:`~keyturn.core.records.Change` stores the key, appends its
    history entry, enqueues its notifications and saves its consumed challenge together, or does
    none of it. Writes are optimistic: a change whose ``expected_version`` is not the stored version
    raises :class:`~keyturn.core.errors.ConcurrentUpdate` and writes nothing.
    """

    async def get(self, key_id: int) -> ApiKey | None:
        """The key with this id, removed ones included, or ``None``."""
        ...

    async def get_by_client_id(self, client_id: str) -> ApiKey | None:
        """The key with this client id, or ``None``."""
        ...

    async def list_keys(self, owner: str | None = None) -> list[ApiKey]:
        """Keys of ``owner`` (every owner's when ``None``), removed ones included, by id."""
        ...

    async def insert(
        self, change: Change, *, max_live_per_owner: int, claim: bool = False
    ) -> ApiKey:
        """Store a new key (``expected_version`` 0), choosing its id; return it.

        Raises :class:`~keyturn.core.errors.QuotaExceeded` if the owner already has
        ``max_live_per_owner`` live keys (:func:`~keyturn.core.checks.check_quota`), checked in
        the same atomic step. ``claim`` as for :meth:`apply`.
        """
        ...

    async def apply(self, change: Change, *, claim: bool = False) -> None:
        """Store a change to an existing key.

        With ``claim``, the change's notifications are stored already claimed by the caller
        (attempt 1, for the claim lease), who delivers them now and then marks them
        (:meth:`mark_delivered`, or :meth:`mark_failed`): inline delivery needs no transaction of
        its own. Should the caller die first, they are due again when the lease ends.
        """
        ...

    async def history(self, key_id: int) -> list[HistoryEntry]:
        """The key's audit trail, oldest first."""
        ...

    async def add_challenge(
        self,
        challenge: Challenge,
        notifications: Sequence[Notification],
        *,
        claim: bool = False,
        seen: tuple[datetime, int] | None = None,
    ) -> None:
        """Store a new confirmation challenge and enqueue its code, atomically.

        ``claim`` as for :meth:`apply`. ``seen`` is ``(since, count)``: what the decision to send
        this code read with :meth:`recent_challenges` (``count`` challenges of the owner for the
        same action and key, sent after ``since``). If there is another count now (a concurrent
        request sent a code for them meanwhile), nothing is written and
        :class:`~keyturn.core.errors.ConcurrentUpdate` is raised, so that the decision is made
        again on what is there. The check and the insert are one step for every writer.
        """
        ...

    async def get_challenge(self, challenge_id: str) -> Challenge | None:
        """The challenge with this id, or ``None``."""
        ...

    async def recent_challenges(self, owner: str, *, since: datetime) -> list[Challenge]:
        """The owner's challenges whose code was sent after ``since``, oldest first (indexed)."""
        ...

    async def save_challenge(self, challenge: Challenge) -> None:
        """Store a challenge one ``version`` above the stored one, else ConcurrentUpdate."""
        ...

    async def use_nonce(
        self, client_id: str, nonce: str, *, expires_at: datetime, now: datetime
    ) -> bool:
        """Record a signature's nonce; ``False`` if the client used it before and it is live.

        A nonce is remembered until ``expires_at`` (the end of its signature's time window);
        the check and the record are one atomic step, so two workers never both accept it.
        """
        ...

    async def access_log(
        self,
        owner: str,
        *,
        events: Collection[str] | None = None,
        offset: int = 0,
        limit: int = 10,
    ) -> list[KeyEvent]:
        """One page of the history of every key ``owner`` ever had, newest first.

        Only entries whose event is in ``events`` (all when ``None``); ordered by time, key id
        and version, descending. A store answers from an index, whatever the history's size.
        """
        ...

    async def start_session(self, session: Session, *, max_per_key: int, now: datetime) -> None:
        """Record an API session (a token family), replacing any session of the same id.

        In the same step the store forgets the key's ended or expired sessions, and ends the
        oldest of its live ones beyond ``max_per_key``. Replacing is how a named session starts
        again: the old row, and so every token issued under it, is gone.
        """
        ...

    async def load_session(self, session_id: str) -> LoadedSession | None:
        """The session, its key, and whether the key's owner has a security key, read together.

        ``None`` if there is no such session.
        """
        ...

    async def rotate_session(self, session_id: str, *, expected: str, new: str) -> bool:
        """Compare-and-swap the session's live refresh id: ``expected`` becomes ``new``.

        ``False``, writing nothing, if the session ended or its refresh id is not ``expected``
        (the refresh token was used before: the caller ends the session).
        """
        ...

    async def end_session(self, session_id: str, now: datetime) -> bool:
        """End a session at ``now``; whether it was live. Its tokens fail from then on."""
        ...

    async def get_security_key(self, owner: str) -> SecurityKey | None:
        """The owner's security key, or ``None``."""
        ...

    async def save_security_key(self, security_key: SecurityKey) -> None:
        """Store a security key one ``version`` above the stored one (version 1: a new one).

        Raises :class:`~keyturn.core.errors.ConcurrentUpdate`, writing nothing, if the stored
        version is not ``version - 1`` (or, for version 1, if the owner already has one).
        """
        ...

    async def remove_security_key(self, owner: str) -> bool:
        """Forget the owner's security key; whether there was one."""
        ...

    async def list_security_keys(self) -> list[SecurityKey]:
        """Every account's security key, by owner (to re-seal them when the server key turns)."""
        ...

    async def reseal(self, key_id: int, *, expected: str, sealed: str) -> bool:
        """Replace the key's sealed secret ``expected`` by ``sealed`` (the same secret).

        ``False``, writing nothing, if the stored sealed secret is no longer ``expected`` (the
        secret was reset or the key removed meanwhile). Used when the sealing key is rotated;
        it changes no property a client can see, so it writes no history.
        """
        ...

    async def claim_deliveries(self, now: datetime, limit: int) -> list[Delivery]:
        """Take up to ``limit`` due notifications for delivery, oldest first.

        A claimed notification is not handed to another caller until its claim lapses
        (:data:`~keyturn.ports.common.CLAIM_LEASE`), so two relays do not deliver the same
        message in the normal case.
        """
        ...

    async def mark_delivered(self, notifications: Sequence[Notification], now: datetime) -> None:
        """Record delivery of ``notifications`` (by id) and drop the codes they carried."""
        ...

    async def mark_failed(self, notification_id: str, retry_at: datetime, error: str) -> None:
        """Record a failed delivery; the notification is due again at ``retry_at``."""
        ...

    async def aclose(self) -> None:
        """Release connections and files."""
        ...
