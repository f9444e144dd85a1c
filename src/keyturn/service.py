"""The synchronous service that portal backends call.

It is the imperative shell around :mod:`keyturn.decisions`.

Each method validates its input, loads the record, asks the ports for what the core cannot do
itself (the time, a code, randomness), lets the core decide, and commits the resulting change in
one atomic store write, retrying when another request got there first. Then it logs one event and
delivers the outbox (best effort). Confirming actions by code lives in
:mod:`keyturn.confirmations`, checking credentials in :mod:`keyturn.authentication`. No business
rule is written here: where a rule seems to be needed, it belongs in :mod:`keyturn.decisions`.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Final, TypeVar

import attrs

from keyturn import decisions, validation
from keyturn._log import get_logger
from keyturn.authentication import Authenticator
from keyturn.confirmations import Confirmations, check_code_shape
from keyturn.errors import (
    CodeMismatch,
    ConcurrentUpdate,
    InvalidInput,
    KeyNotFound,
)
from keyturn.hashing import new_client_id, new_id, new_secret
from keyturn.lifecycle import Action, State
from keyturn.outbox import OutboxRelay
from keyturn.policy import Policy
from keyturn.records import (
    ApiKey,
    Challenge,
    Change,
    Confirmation,
    IssuedSecret,
    Notification,
    Principal,
)
from keyturn.scope import Scope

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from datetime import datetime

    from keyturn.hashing import SecretHasher
    from keyturn.ports import Clock, CodeVerifier, KeyStore, Notifier
    from keyturn.records import HistoryEntry
    from keyturn.sealing import SecretBox
    from keyturn.signatures import SignedRequest

T = TypeVar("T")

#: Attempts at a write that lost a race before the conflict is handed to the caller.
WRITE_ATTEMPTS: Final = 4


class _Unset(enum.Enum):
    UNSET = enum.auto()


UNSET: Final = _Unset.UNSET


@attrs.define(kw_only=True)
class KeyService:
    """The key lifecycle, over a store, a code verifier, a notifier and a clock.

    ``owner`` on every method is the account acting on its own keys; a key of another owner is
    reported exactly like a missing one. ``actor`` (default: the owner) is recorded in history.
    """

    store: KeyStore
    verifier: CodeVerifier
    notifier: Notifier
    clock: Clock
    secret_hasher: SecretHasher
    policy: Policy = attrs.field(factory=Policy)
    secret_box: SecretBox | None = None
    logger: Any = attrs.field(factory=get_logger)
    deliver_inline: bool = True
    relay: OutboxRelay = attrs.field(init=False)
    _confirmations: Confirmations = attrs.field(init=False, repr=False)
    _authenticator: Authenticator = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self.relay = OutboxRelay(
            store=self.store, notifier=self.notifier, clock=self.clock, logger=self.logger
        )
        self._confirmations = Confirmations(
            store=self.store,
            verifier=self.verifier,
            policy=self.policy,
            logger=self.logger,
            deliver=self._deliver,
        )
        self._authenticator = Authenticator(
            store=self.store,
            secret_hasher=self.secret_hasher,
            clock=self.clock,
            logger=self.logger,
            secret_box=self.secret_box,
        )

    # --- plumbing ---------------------------------------------------------------------------

    def _load(self, key_id: object, owner: str, action: Action) -> ApiKey:
        key = self.store.get(validation.key_id(key_id))
        if key is None or key.owner != owner:
            raise KeyNotFound(key_id, action=action.value)
        return key

    def _committed(self, change: Change) -> ApiKey:
        h = change.history
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
        self._deliver(change.notifications)
        return change.key

    def _deliver(self, notifications: Sequence[Notification]) -> None:
        """Best effort: deliver this request's own notifications now; the relay has the rest."""
        if self.deliver_inline and notifications:
            self.relay.run_once(only=[n.id for n in notifications])

    def _retrying(self, attempt: Callable[[], T]) -> T:
        for _ in range(WRITE_ATTEMPTS - 1):
            try:
                return attempt()
            except ConcurrentUpdate:
                continue
        return attempt()

    def _act(
        self,
        key_id: object,
        owner: object,
        action: Action,
        decide: Callable[[ApiKey, datetime, Challenge | None], Change | None],
        *,
        params: Mapping[str, str] | None = None,
        confirmation: Confirmation | None = None,
    ) -> ApiKey:
        who = validation.owner(owner)

        def attempt() -> ApiKey:
            key = self._load(key_id, who, action)
            decisions.require(key, action)
            now = self.clock.now()
            challenge = self._confirmations.confirm(
                action=action,
                owner=who,
                key_id=key.id,
                params=params or {},
                confirmation=confirmation,
                now=now,
            )
            change = decide(key, now, challenge)
            if change is None:
                return key
            self.store.apply(change)
            return self._committed(change)

        return self._retrying(attempt)

    def _seal(self, secret: str | None, client_id: str) -> str | None:
        """The secret sealed for signatures, if this service keeps secrets recoverable."""
        if secret is None or self.secret_box is None:
            return None
        return self.secret_box.seal(secret, context=client_id)

    def _actor(self, actor: object, owner: object) -> str:
        return validation.actor(owner if actor is None else actor)

    def _check_code_shape(self, code: object, action: Action) -> str:
        return check_code_shape(self.verifier, code, action)

    # --- the lifecycle ----------------------------------------------------------------------

    def create(
        self,
        *,
        owner: object,
        name: object,
        max_scope: object,
        ip_whitelist: object = None,
        enabled_features: object = None,
        public_key: object = None,
        actor: object = None,
        confirmation: Confirmation | None = None,
    ) -> IssuedSecret:
        """A new key in ``created``. The answer carries its secret: the only time it is given out.

        With ``public_key`` (PEM) the key authenticates by signature only and has no secret.
        """
        who = validation.owner(owner)
        by = self._actor(actor, who)
        fields = {
            "name": validation.name(name),
            "max_scope": Scope.parse(max_scope),
            "ip_whitelist": validation.ip_whitelist(ip_whitelist),
            "enabled_features": validation.enabled_features(enabled_features),
        }
        pem = validation.public_key(public_key)
        params = {k: str(v) for k, v in fields.items()} | {"public_key": pem[1] if pem else ""}

        def attempt() -> IssuedSecret:
            now = self.clock.now()
            challenge = self._confirmations.confirm(
                action=Action.CREATE,
                owner=who,
                key_id=None,
                params=params,
                confirmation=confirmation,
                now=now,
            )
            secret = None if pem else new_secret()
            client_id = new_client_id()
            key = ApiKey(
                id=0,
                owner=who,
                client_id=client_id,
                state=State.CREATED,
                version=0,
                created_at=now,
                updated_at=now,
                fingerprint=pem[1] if pem else self.secret_hasher.fingerprint(secret or ""),
                secret_digest=self.secret_hasher.digest(secret) if secret else None,
                public_key=pem[0] if pem else None,
                sealed_secret=self._seal(secret, client_id),
                **fields,  # type: ignore[arg-type]
            )
            change = decisions.created(
                key, now=now, actor=by, notification_id=new_id(), challenge=challenge
            )
            stored = self.store.insert(change, max_live_per_owner=self.policy.max_keys_per_owner)
            self._committed(change.with_key_id(stored.id))
            return IssuedSecret(stored, secret)

        return self._retrying(attempt)

    def acknowledge_secret(self, key_id: object, *, owner: object, actor: object = None) -> ApiKey:
        """Record "I saved the secret": ``created`` -> ``secret_acknowledged``."""
        by = self._actor(actor, owner)
        return self._act(
            key_id,
            owner,
            Action.ACKNOWLEDGE_SECRET,
            lambda k, now, _: decisions.acknowledged(
                k, now=now, actor=by, notification_id=new_id()
            ),
        )

    def _send_code(self, key_id: object, owner: object, actor: object, action: Action) -> ApiKey:
        by = self._actor(actor, owner)

        def decide(key: ApiKey, now: datetime, _: Challenge | None) -> Change:
            decisions.check_send(key, action, now, self.policy)
            issued = self.verifier.issue(subject=f"activation:{key.id}", owner=key.owner)
            notice = decisions.code_notice(
                notification_id=new_id(),
                owner=key.owner,
                key_id=key.id,
                key_name=key.name,
                subject=f"Your code to activate API key {key.name!r}",
                code=issued.code,
                sent_at=now,
                expires_at=now + self.policy.code_ttl,
            )
            return decisions.code_sent(
                key,
                action,
                ref=issued.ref,
                code_notice=notice,
                now=now,
                policy=self.policy,
                actor=by,
                notification_id=new_id(),
            )

        return self._act(key_id, owner, action, decide)

    def request_activation(self, key_id: object, *, owner: object, actor: object = None) -> ApiKey:
        """ACTIVATE: a code goes to the owner; the key waits in ``pending_2fa``."""
        return self._send_code(key_id, owner, actor, Action.REQUEST_ACTIVATION)

    def resend_code(self, key_id: object, *, owner: object, actor: object = None) -> ApiKey:
        """A fresh code replaces the last one; allowed from ``resend_after`` after the last send."""
        return self._send_code(key_id, owner, actor, Action.RESEND_CODE)

    def verify_code(
        self, key_id: object, code: object, *, owner: object, actor: object = None
    ) -> ApiKey:
        """The owner enters the code: ``pending_2fa`` -> ``active`` if it is right and in time.

        A wrong code raises :class:`~keyturn.errors.CodeMismatch` and is counted.
        """
        by = self._actor(actor, owner)
        candidate = self._check_code_shape(code, Action.VERIFY_CODE)
        matched = False

        def decide(key: ApiKey, now: datetime, _: Challenge | None) -> Change:
            nonlocal matched
            pending = decisions.check_verify(key, now, self.policy)
            matched = self.verifier.check(
                subject=f"activation:{key.id}", ref=pending.ref, candidate=candidate
            )
            return decisions.code_checked(
                key,
                matched=matched,
                now=now,
                policy=self.policy,
                actor=by,
                notification_id=new_id(),
            )

        key = self._act(key_id, owner, Action.VERIFY_CODE, decide)
        if not matched:
            raise CodeMismatch(
                key_id=key.id,
                state=key.state.value,
                action=Action.VERIFY_CODE.value,
                attempts_left=decisions.attempts_left(key, self.policy),
            )
        return key

    def cancel_activation(self, key_id: object, *, owner: object, actor: object = None) -> ApiKey:
        """The code dialog was closed: back to the state activation started from."""
        by = self._actor(actor, owner)
        return self._act(
            key_id,
            owner,
            Action.CANCEL_ACTIVATION,
            lambda k, now, _: decisions.cancelled(k, now=now, actor=by, notification_id=new_id()),
        )

    def disable(
        self,
        key_id: object,
        *,
        owner: object,
        actor: object = None,
        confirmation: Confirmation | None = None,
    ) -> ApiKey:
        """Deactivate: ``active`` -> ``disabled``, effective on the next authentication."""
        by = self._actor(actor, owner)
        return self._act(
            key_id,
            owner,
            Action.DISABLE,
            lambda k, now, ch: decisions.disabled(
                k, now=now, actor=by, notification_id=new_id(), challenge=ch
            ),
            confirmation=confirmation,
        )

    def enable(self, key_id: object, *, owner: object, actor: object = None) -> ApiKey:
        """Re-activate a disabled key: through a code, or directly if the policy allows."""
        if not self.policy.direct_enable:
            return self._send_code(key_id, owner, actor, Action.ENABLE)
        by = self._actor(actor, owner)
        return self._act(
            key_id,
            owner,
            Action.ENABLE,
            lambda k, now, _: decisions.enabled_directly(
                k, now=now, policy=self.policy, actor=by, notification_id=new_id()
            ),
        )

    def edit(
        self,
        key_id: object,
        *,
        owner: object,
        name: object = UNSET,
        max_scope: object = UNSET,
        ip_whitelist: object = UNSET,
        enabled_features: object = UNSET,
        actor: object = None,
        confirmation: Confirmation | None = None,
    ) -> ApiKey:
        """Change name, scope, whitelist or features; fields left ``UNSET`` stay as they are.

        Editing anything but the name of an ``active`` key disables it (policy
        ``edit_deactivates``). An edit that changes nothing writes nothing.
        """
        by = self._actor(actor, owner)
        edit = decisions.Edit(
            name=None if name is UNSET else validation.name(name),
            max_scope=None if max_scope is UNSET else Scope.parse(max_scope),
            ip_whitelist=None if ip_whitelist is UNSET else validation.ip_whitelist(ip_whitelist),
            enabled_features=(
                None if enabled_features is UNSET else validation.enabled_features(enabled_features)
            ),
        )
        params = {f: str(v) for f, v in attrs.asdict(edit, recurse=False).items() if v is not None}
        return self._act(
            key_id,
            owner,
            Action.EDIT,
            lambda k, now, ch: decisions.edited(
                k,
                edit,
                now=now,
                policy=self.policy,
                actor=by,
                notification_id=new_id(),
                challenge=ch,
            ),
            params=params,
            confirmation=confirmation,
        )

    def reset_secret(
        self,
        key_id: object,
        *,
        owner: object,
        actor: object = None,
        confirmation: Confirmation | None = None,
    ) -> IssuedSecret:
        """A new secret, handed out in this answer only; the old one stops working at once."""
        by = self._actor(actor, owner)
        secret = new_secret()

        def decide(key: ApiKey, now: datetime, ch: Challenge | None) -> Change:
            if key.public_key is not None:
                raise InvalidInput(
                    "id",
                    "this key authenticates by public key and has no secret to reset",
                    action=Action.RESET_SECRET,
                )
            return decisions.secret_reset(
                key,
                secret_digest=self.secret_hasher.digest(secret),
                fingerprint=self.secret_hasher.fingerprint(secret),
                sealed_secret=self._seal(secret, key.client_id),
                now=now,
                actor=by,
                notification_id=new_id(),
                challenge=ch,
            )

        key = self._act(key_id, owner, Action.RESET_SECRET, decide, confirmation=confirmation)
        return IssuedSecret(key, secret)

    def remove(
        self,
        key_id: object,
        *,
        owner: object,
        actor: object = None,
        confirmation: Confirmation | None = None,
    ) -> ApiKey:
        """Remove for good. The record and its history stay, for audit."""
        by = self._actor(actor, owner)
        return self._act(
            key_id,
            owner,
            Action.REMOVE,
            lambda k, now, ch: decisions.removed(
                k, now=now, actor=by, notification_id=new_id(), challenge=ch
            ),
            confirmation=confirmation,
        )

    def unlock_activation(self, key_id: object, *, actor: object) -> ApiKey:
        """Operator only: clear the consecutive-failure lock. No owner check: guard the caller."""
        by = validation.actor(actor)
        key = self.store.get(validation.key_id(key_id))
        if key is None:
            raise KeyNotFound(key_id, action=Action.UNLOCK_ACTIVATION.value)
        return self._act(
            key_id,
            key.owner,
            Action.UNLOCK_ACTIVATION,
            lambda k, now, _: decisions.unlocked(k, now=now, actor=by, notification_id=new_id()),
        )

    # --- reading ----------------------------------------------------------------------------

    def get(self, key_id: object, *, owner: object) -> ApiKey:
        """One key of ``owner`` (removed ones too)."""
        return self._load(key_id, validation.owner(owner), Action.EDIT)

    def list_keys(self, *, owner: object, include_removed: bool = False) -> list[ApiKey]:
        """The owner's keys, by id; live ones only unless ``include_removed``."""
        keys = self.store.list_keys(validation.owner(owner))
        return [k for k in keys if include_removed or k.live]

    def history(self, key_id: object, *, owner: object) -> list[HistoryEntry]:
        """The key's audit trail, oldest first."""
        key = self.get(key_id, owner=owner)
        return self.store.history(key.id)

    # --- authentication ---------------------------------------------------------------------

    def authenticate(self, client_id: object, secret: object, *, source_ip: object) -> Principal:
        """Check credentials: only an ``active`` key, the right secret, a whitelisted address.

        Reads the store on every call (no cache), so a key disabled a moment ago fails now.
        Raises :class:`~keyturn.errors.AuthenticationFailed` with one message whatever failed.
        """
        return self._authenticator.authenticate(client_id, secret, source_ip=source_ip)

    def authenticate_signature(self, signed: SignedRequest, *, source_ip: object) -> Principal:
        """Check a signed request (:mod:`keyturn.signatures`): signature, window, nonce, state.

        A key with a public key is checked against it; a key with a secret needs the secret
        sealed (a service with a ``secret_box``). Raises
        :class:`~keyturn.errors.AuthenticationFailed` with one message whatever failed.
        """
        return self._authenticator.authenticate_signature(signed, source_ip=source_ip)

    def reseal_secrets(self) -> tuple[int, int]:
        """Re-seal every sealed secret not under the box's current key.

        Returns how many were re-sealed and how many still are not under the current key
        (changed meanwhile: run again). Needs every old key still in the ring.
        """
        if self.secret_box is None:
            raise InvalidInput("secret_box", "this service keeps no sealed secrets")
        box, done = self.secret_box, 0
        for key in self.store.list_keys():
            if key.sealed_secret is not None and box.needs_reseal(key.sealed_secret):
                fresh = box.reseal(key.sealed_secret, context=key.client_id)
                done += self.store.reseal(key.id, expected=key.sealed_secret, sealed=fresh)
        left = sum(
            1
            for k in self.store.list_keys()
            if k.sealed_secret is not None and box.needs_reseal(k.sealed_secret)
        )
        self.logger.info("secrets_resealed", resealed=done, left=left, key_id_now=box.current)
        return done, left
