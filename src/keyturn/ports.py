"""The ports: what keyturn needs from the world, as ``typing.Protocol`` classes.

A *port* is the shape of a dependency as the domain sees it; an *adapter* is one way to fill it
(:mod:`keyturn.adapters` ships clocks, code verifiers, notifiers and stores;
:mod:`keyturn.testing` ships fakes). The service takes one of each, by keyword, and wires nothing
itself: :mod:`keyturn.wiring` is the one place that chooses adapters. This module defines shapes
only, and must not import any adapter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import attrs

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
        Notification,
        SecurityKey,
        Session,
    )


class Clock(Protocol):
    """Tells the time. The only way time enters keyturn."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


@attrs.frozen
class IssuedCode:
    """A code a verifier has issued.

    ``ref`` is stored and handed back to :meth:`CodeVerifier.check`. ``code`` is the code for
    keyturn to deliver through the notifier, or ``None`` when the verifier delivers it itself
    (an outside service that sends and checks codes).
    """

    ref: str = attrs.field(repr=False)
    code: str | None = attrs.field(repr=False)


class CodeVerifier(Protocol):
    """Issues one-time codes and checks candidates against them.

    ``subject`` binds a code to what it is for (a key and purpose, or a challenge): a code issued
    for one subject never checks for another. Expiry, attempt counting and "only the latest code"
    are keyturn's rules, enforced by the domain; a verifier only answers "does this match".
    """

    def issue(self, *, subject: str, owner: str) -> IssuedCode:
        """Make a fresh code for ``subject``; deliver it to ``owner`` if this verifier sends."""
        ...

    def check(self, *, subject: str, ref: str, candidate: str) -> bool:
        """Whether ``candidate`` is the code issued as ``ref`` for ``subject`` (constant time)."""
        ...

    def is_well_formed(self, candidate: str) -> bool:
        """Whether ``candidate`` has the shape of a code at all (checked before any lookup)."""
        ...


class SecondFactor(Protocol):
    """Checks codes from a person's authenticator (TOTP) for security keys.

    Unlike a :class:`CodeVerifier` it issues no code: the person's app computes it from a secret
    shared once at enrollment. It must do no I/O (it is called inside the service's operations,
    sync and async alike); :class:`keyturn.adapters.totp.TotpVerifier` is the shipped adapter.
    """

    @property
    def kind(self) -> str:
        """Deribit's security-key type this factor is (``tfa`` for TOTP)."""
        ...

    def new_secret(self) -> str:
        """A fresh shared secret, from :mod:`secrets`."""
        ...

    def provisioning_uri(self, secret: str, *, account: str, issuer: str) -> str:
        """The ``otpauth://`` URI that enrolls ``secret`` in an authenticator app."""
        ...

    def match(self, secret: str, candidate: str, now: datetime) -> int | None:
        """The time step ``candidate`` is the code of, if it is valid at ``now``; else ``None``.

        Compares in constant time. Steps grow with time, so the caller can refuse a replay.
        """
        ...

    def is_well_formed(self, candidate: str) -> bool:
        """Whether ``candidate`` has the shape of a code at all."""
        ...


class Notifier(Protocol):
    """Delivers a notification to a person. Raises on failure, so the outbox retries it."""

    def deliver(self, notification: Notification) -> None:
        """Send ``notification`` to its owner."""
        ...


class KeyStore(Protocol):
    """Keeps keys, their history, confirmation challenges and the notification outbox.

    Every write is atomic: a :class:`~keyturn.core.records.Change` stores the key, appends its
    history entry, enqueues its notifications and saves its consumed challenge together, or does
    none of it. Writes are optimistic: a change whose ``expected_version`` is not the stored version
    raises :class:`~keyturn.core.errors.ConcurrentUpdate` and writes nothing.
    """

    def get(self, key_id: int) -> ApiKey | None:
        """The key with this id, removed ones included, or ``None``."""
        ...

    def get_by_client_id(self, client_id: str) -> ApiKey | None:
        """The key with this client id, or ``None``."""
        ...

    def list_keys(self, owner: str | None = None) -> list[ApiKey]:
        """Keys of ``owner`` (every owner's when ``None``), removed ones included, by id."""
        ...

    def insert(self, change: Change, *, max_live_per_owner: int) -> ApiKey:
        """Store a new key (``expected_version`` 0), choosing its id; return it.

        Raises :class:`~keyturn.core.errors.QuotaExceeded` if the owner already has
        ``max_live_per_owner`` live keys, checked in the same atomic step.
        """
        ...

    def apply(self, change: Change) -> None:
        """Store a change to an existing key."""
        ...

    def history(self, key_id: int) -> list[HistoryEntry]:
        """The key's audit trail, oldest first."""
        ...

    def add_challenge(self, challenge: Challenge, notifications: Sequence[Notification]) -> None:
        """Store a new confirmation challenge and enqueue its code, atomically."""
        ...

    def get_challenge(self, challenge_id: str) -> Challenge | None:
        """The challenge with this id, or ``None``."""
        ...

    def save_challenge(self, challenge: Challenge) -> None:
        """Store a challenge one ``version`` above the stored one, else ConcurrentUpdate."""
        ...

    def use_nonce(self, client_id: str, nonce: str, *, expires_at: datetime, now: datetime) -> bool:
        """Record a signature's nonce; ``False`` if the client used it before and it is live.

        A nonce is remembered until ``expires_at`` (the end of its signature's time window);
        the check and the record are one atomic step, so two workers never both accept it.
        """
        ...

    def access_log(
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

    def start_session(self, session: Session, *, max_per_key: int, now: datetime) -> None:
        """Record a new API session (a token family).

        In the same step the store forgets the key's ended or expired sessions, and ends the
        oldest of its live ones beyond ``max_per_key``.
        """
        ...

    def load_session(self, session_id: str) -> tuple[ApiKey, Session] | None:
        """The session and its key, read together, or ``None`` if there is no such session."""
        ...

    def rotate_session(self, session_id: str, *, expected: str, new: str) -> bool:
        """Compare-and-swap the session's live refresh id: ``expected`` becomes ``new``.

        ``False``, writing nothing, if the session ended or its refresh id is not ``expected``
        (the refresh token was used before: the caller ends the session).
        """
        ...

    def end_session(self, session_id: str, now: datetime) -> bool:
        """End a session at ``now``; whether it was live. Its tokens fail from then on."""
        ...

    def get_security_key(self, owner: str) -> SecurityKey | None:
        """The owner's security key, or ``None``."""
        ...

    def save_security_key(self, security_key: SecurityKey) -> None:
        """Store a security key one ``version`` above the stored one (version 1: a new one).

        Raises :class:`~keyturn.core.errors.ConcurrentUpdate`, writing nothing, if the stored
        version is not ``version - 1`` (or, for version 1, if the owner already has one).
        """
        ...

    def remove_security_key(self, owner: str) -> bool:
        """Forget the owner's security key; whether there was one."""
        ...

    def list_security_keys(self) -> list[SecurityKey]:
        """Every account's security key, by owner (to re-seal them when the server key turns)."""
        ...

    def reseal(self, key_id: int, *, expected: str, sealed: str) -> bool:
        """Replace the key's sealed secret ``expected`` by ``sealed`` (the same secret).

        ``False``, writing nothing, if the stored sealed secret is no longer ``expected`` (the
        secret was reset or the key removed meanwhile). Used when the sealing key is rotated;
        it changes no property a client can see, so it writes no history.
        """
        ...

    def claim_deliveries(
        self, now: datetime, limit: int, only: Sequence[str] | None = None
    ) -> list[Delivery]:
        """Take up to ``limit`` due notifications for delivery, oldest first.

        A claimed notification is not handed to another caller until its claim lapses, so two
        relays do not deliver the same message in the normal case. ``only`` restricts the claim
        to those notification ids (inline delivery of a request's own messages).
        """
        ...

    def mark_delivered(self, notification_id: str, now: datetime) -> None:
        """Record delivery and drop the code the notification carried."""
        ...

    def mark_failed(self, notification_id: str, retry_at: datetime, error: str) -> None:
        """Record a failed delivery; the notification is due again at ``retry_at``."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


# --- async ports: the same shapes, awaited (for :class:`~keyturn.aio.AsyncKeyService`) --------


class AsyncCodeVerifier(Protocol):
    """:class:`CodeVerifier`, awaited: for a verifier that calls an outside service."""

    async def issue(self, *, subject: str, owner: str) -> IssuedCode:
        """Make a fresh code for ``subject``."""
        ...

    async def check(self, *, subject: str, ref: str, candidate: str) -> bool:
        """Whether ``candidate`` is the code issued as ``ref`` for ``subject``."""
        ...

    def is_well_formed(self, candidate: str) -> bool:
        """Whether ``candidate`` has the shape of a code (no I/O: checked before any lookup)."""
        ...


class AsyncNotifier(Protocol):
    """:class:`Notifier`, awaited."""

    async def deliver(self, notification: Notification) -> None:
        """Send ``notification`` to its owner; raise on failure."""
        ...


class AsyncKeyStore(Protocol):
    """:class:`KeyStore`, awaited: the same methods and promises, as coroutines."""

    async def get(self, key_id: int) -> ApiKey | None:
        """See :meth:`KeyStore.get`."""
        ...

    async def get_by_client_id(self, client_id: str) -> ApiKey | None:
        """See :meth:`KeyStore.get_by_client_id`."""
        ...

    async def list_keys(self, owner: str | None = None) -> list[ApiKey]:
        """See :meth:`KeyStore.list_keys`."""
        ...

    async def insert(self, change: Change, *, max_live_per_owner: int) -> ApiKey:
        """See :meth:`KeyStore.insert`."""
        ...

    async def apply(self, change: Change) -> None:
        """See :meth:`KeyStore.apply`."""
        ...

    async def history(self, key_id: int) -> list[HistoryEntry]:
        """See :meth:`KeyStore.history`."""
        ...

    async def add_challenge(
        self, challenge: Challenge, notifications: Sequence[Notification]
    ) -> None:
        """See :meth:`KeyStore.add_challenge`."""
        ...

    async def get_challenge(self, challenge_id: str) -> Challenge | None:
        """See :meth:`KeyStore.get_challenge`."""
        ...

    async def save_challenge(self, challenge: Challenge) -> None:
        """See :meth:`KeyStore.save_challenge`."""
        ...

    async def use_nonce(
        self, client_id: str, nonce: str, *, expires_at: datetime, now: datetime
    ) -> bool:
        """See :meth:`KeyStore.use_nonce`."""
        ...

    async def access_log(
        self,
        owner: str,
        *,
        events: Collection[str] | None = None,
        offset: int = 0,
        limit: int = 10,
    ) -> list[KeyEvent]:
        """See :meth:`KeyStore.access_log`."""
        ...

    async def start_session(self, session: Session, *, max_per_key: int, now: datetime) -> None:
        """See :meth:`KeyStore.start_session`."""
        ...

    async def load_session(self, session_id: str) -> tuple[ApiKey, Session] | None:
        """See :meth:`KeyStore.load_session`."""
        ...

    async def rotate_session(self, session_id: str, *, expected: str, new: str) -> bool:
        """See :meth:`KeyStore.rotate_session`."""
        ...

    async def end_session(self, session_id: str, now: datetime) -> bool:
        """See :meth:`KeyStore.end_session`."""
        ...

    async def get_security_key(self, owner: str) -> SecurityKey | None:
        """See :meth:`KeyStore.get_security_key`."""
        ...

    async def save_security_key(self, security_key: SecurityKey) -> None:
        """See :meth:`KeyStore.save_security_key`."""
        ...

    async def remove_security_key(self, owner: str) -> bool:
        """See :meth:`KeyStore.remove_security_key`."""
        ...

    async def list_security_keys(self) -> list[SecurityKey]:
        """See :meth:`KeyStore.list_security_keys`."""
        ...

    async def reseal(self, key_id: int, *, expected: str, sealed: str) -> bool:
        """See :meth:`KeyStore.reseal`."""
        ...

    async def claim_deliveries(
        self, now: datetime, limit: int, only: Sequence[str] | None = None
    ) -> list[Delivery]:
        """See :meth:`KeyStore.claim_deliveries`."""
        ...

    async def mark_delivered(self, notification_id: str, now: datetime) -> None:
        """See :meth:`KeyStore.mark_delivered`."""
        ...

    async def mark_failed(self, notification_id: str, retry_at: datetime, error: str) -> None:
        """See :meth:`KeyStore.mark_failed`."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
