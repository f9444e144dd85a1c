"""The values keyturn keeps and passes around.

One piece: the records one :class:`Change` carries, which every store writes together; each class
is short.

Keys, pending codes, challenges, history entries, notifications, and the :class:`Change` a store
applies atomically.

All are frozen ``attrs`` classes, changed only with ``attrs.evolve``. Fields that hold a secret, a
code or anything derived from one are ``repr=False``: printing a record never shows them. Nothing
here does I/O or reads a clock.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

import attrs

from keyturn.core.lifecycle import TERMINAL, Action, State

if TYPE_CHECKING:
    from datetime import datetime

    from keyturn.core.scope import Scope
    from keyturn.core.validation import IpNetwork


@attrs.frozen
class PendingCode:
    """The last verification code of a key (activation), or of a challenge, until it is used.

    ``ref`` is what the code verifier needs to check a candidate (a keyed hash for the default
    verifier, a reference for an outside service); never the code itself. ``ended`` marks a code
    that can no longer be entered (an edit ended it) but still times the resend wait.
    """

    ref: str = attrs.field(repr=False)
    sent_at: datetime
    expires_at: datetime
    resend_at: datetime
    attempts: int = 0
    ended: bool = False


@attrs.frozen
class ApiKey:
    """One API key as stored, with no secret in the clear.

    It holds the secret's keyed digest and, where signatures need it, the secret sealed with
    AES-GCM (:mod:`keyturn.crypto.sealing`); both are hidden from repr. ``generation`` counts the
    changes that ended every credential issued before them (a new secret, leaving ``active``, a
    narrower scope or whitelist): a token carries the generation it was issued under and is
    refused once the key's has moved on.
    """

    id: int
    owner: str
    client_id: str
    name: str
    max_scope: Scope
    ip_whitelist: tuple[IpNetwork, ...]
    enabled_features: tuple[str, ...]
    state: State
    version: int
    created_at: datetime
    updated_at: datetime
    fingerprint: str
    secret_digest: str | None = attrs.field(default=None, repr=False)
    public_key: str | None = attrs.field(default=None, repr=False)
    sealed_secret: str | None = attrs.field(default=None, repr=False)
    activation_origin: State | None = None
    pending: PendingCode | None = None
    consecutive_failures: int = 0
    sends: tuple[datetime, ...] = ()
    generation: int = 0

    @property
    def enabled(self) -> bool:
        """Whether the key can authenticate (Deribit's ``enabled``): exactly when ``active``."""
        return self.state is State.ACTIVE

    @property
    def live(self) -> bool:
        """Whether the key still exists for its owner (not removed)."""
        return self.state not in TERMINAL


@attrs.frozen
class Challenge:
    """A code sent to confirm one exact request (create, edit, remove... as the policy says).

    ``request_digest`` binds it to the action's parameters: the code confirms only that request.
    """

    id: str
    owner: str
    action: Action
    key_id: int | None
    request_digest: str = attrs.field(repr=False)
    code: PendingCode
    used: bool = False
    version: int = 1


@attrs.frozen
class Confirmation:
    """What a caller hands back to confirm a request: the challenge id and the code received."""

    challenge_id: str
    code: str = attrs.field(repr=False)


@attrs.frozen
class SecurityKey:
    """An account's second factor for per-call authorization (Deribit's "security key").

    ``kind`` is Deribit's key type (``tfa``: a TOTP authenticator app). The TOTP secret is kept
    sealed with AES-GCM (:mod:`keyturn.crypto.sealing`), bound to the owner, and hidden from repr.
    ``last_step`` is the TOTP time step of the last accepted code: no code of that step or an
    earlier one is accepted again. ``failures`` counts wrong codes in a row.
    """

    owner: str
    name: str
    kind: str
    sealed_secret: str = attrs.field(repr=False)
    created_at: datetime
    last_step: int = -1
    failures: int = 0
    version: int = 1


@attrs.frozen
class SecurityKeyEnrollment:
    """A freshly enrolled security key, with its secret for the person's authenticator app.

    ``secret`` (base32) and ``uri`` (``otpauth://``, for a QR code) are handed out once, here.
    """

    key: SecurityKey
    secret: str = attrs.field(repr=False)
    uri: str = attrs.field(repr=False)


@attrs.frozen
class SecurityAnswer:
    """What a caller sends back for a security-key challenge.

    Deribit's ``challenge`` and ``authorization_data`` (the code from the authenticator).
    """

    challenge: str = attrs.field(repr=False)
    code: str = attrs.field(repr=False)


class NotificationKind(enum.StrEnum):
    """What a notification carries."""

    CODE = "code"
    KEY_EVENT = "key_event"


@attrs.frozen
class Notification:
    """A message for the owner: a code to enter, or news of a change to one of their keys.

    ``code`` is set only for ``CODE`` notifications from a verifier that lets keyturn deliver; it
    is hidden from repr, sealed while it waits in the outbox
    (:class:`keyturn.crypto.sealing.CodeSeal`), and dropped from storage once delivered.
    """

    id: str
    owner: str
    key_id: int | None
    key_name: str
    kind: NotificationKind
    subject: str
    created_at: datetime
    code: str | None = attrs.field(default=None, repr=False)
    expires_at: datetime | None = None


@attrs.frozen
class HistoryEntry:
    """One line of a key's audit trail: the change that took it to ``version``."""

    key_id: int
    version: int
    action: Action
    event: str
    from_state: State | None
    to_state: State
    actor: str
    at: datetime
    detail: str = ""


@attrs.frozen
class Change:
    """Everything one request writes, applied by a store in one atomic step.

    ``expected_version`` is the version the request read (0 for a new key); a store refuses the
    change if the stored key has moved on. ``history`` holds one entry per lifecycle step, in
    order (more than one when steps are chained into one request, as the API's create, which
    creates, acknowledges and enables). ``challenge`` is a confirmation consumed with it.
    """

    key: ApiKey
    expected_version: int
    history: tuple[HistoryEntry, ...]
    notifications: tuple[Notification, ...] = ()
    challenge: Challenge | None = None

    def with_key_id(self, key_id: int) -> Change:
        """The same change for a new key once the store has chosen its id."""
        return attrs.evolve(
            self,
            key=attrs.evolve(self.key, id=key_id),
            history=tuple(attrs.evolve(h, key_id=key_id) for h in self.history),
            notifications=tuple(attrs.evolve(n, key_id=key_id) for n in self.notifications),
            challenge=(attrs.evolve(self.challenge, key_id=key_id) if self.challenge else None),
        )


@attrs.frozen
class LoadedSession:
    """A session as a request reads it: with its key, and whether the owner has a security key.

    The last spares a guarded call another read of the store when the account has none.
    """

    key: ApiKey
    session: Session
    security_key: bool


@attrs.frozen
class Delivery:
    """An outbox entry a relay has claimed: the notification and how often delivery was tried."""

    notification: Notification
    attempts: int


@attrs.frozen
class IssuedSecret:
    """The one answer that carries a key's secret: after ``create`` or ``reset_secret``.

    Show ``client_secret`` to the person once; keyturn keeps only its keyed digest. It is hidden
    from repr so that logging this object cannot leak it.
    """

    key: ApiKey
    client_secret: str | None = attrs.field(repr=False)


@attrs.frozen
class Principal:
    """Who authenticated: the key, its owner and what it may do.

    ``generation`` is the key's credential generation at that moment (see :class:`ApiKey`): a
    token issued for this principal is good only while the key is still at it.
    """

    key_id: int
    owner: str
    client_id: str
    max_scope: Scope
    generation: int = 0
    #: Whether the owner had a security key when the principal was read (``None``: not read).
    security_key: bool | None = None


@attrs.frozen
class Session:
    """One login of a key through the API: the family of tokens one ``public/auth`` started.

    Its access and refresh tokens carry its ``id``. ``refresh_id`` names the one refresh token of
    the family that may still be used: refreshing rotates it, and presenting an older one ends
    the session (OAuth 2.1's reuse detection). ``generation`` is the key's credential generation
    at login; ``expires_at`` is the session's absolute end, however often it is refreshed.
    """

    id: str
    key_id: int
    generation: int
    refresh_id: str = attrs.field(repr=False)
    created_at: datetime
    expires_at: datetime
    ended_at: datetime | None = None

    def live(self, now: datetime) -> bool:
        """Whether the session can still serve a request at ``now``."""
        return self.ended_at is None and now < self.expires_at


@attrs.frozen
class KeyEvent:
    """One entry of an owner's access log: a history entry and the client id of its key."""

    client_id: str
    entry: HistoryEntry


_KEY_FIELDS = tuple(a.name for a in attrs.fields(ApiKey))


def evolve_key(key: ApiKey, **changes: object) -> ApiKey:
    """``attrs.evolve`` for the hot path: the same result, with the field names worked out once."""
    values = {name: getattr(key, name) for name in _KEY_FIELDS}
    values.update(changes)
    return ApiKey(**values)
