"""The synchronous service that portal backends call.

A thin shell: each method runs one operation of :mod:`keyturn.operations` against the sync ports
(:func:`keyturn.effects.run`). :class:`keyturn.aio.AsyncKeyService` runs the same operations
against async ports. No business rule is written here: where a rule seems to be needed, it
belongs in :mod:`keyturn.core.decisions`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from keyturn import effects
from keyturn._log import get_logger
from keyturn.core.lifecycle import Action
from keyturn.core.policy import Policy
from keyturn.operations import UNSET, WRITE_ATTEMPTS, Operations, forward_to_ops
from keyturn.outbox import OutboxRelay

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    from keyturn.core.records import (
        ApiKey,
        Confirmation,
        HistoryEntry,
        IssuedSecret,
        KeyEvent,
        Principal,
        SecurityKey,
        SecurityKeyEnrollment,
    )
    from keyturn.crypto.hashing import SecretHasher
    from keyturn.crypto.sealing import SecretBox
    from keyturn.effects import Op, T
    from keyturn.outbox import CodeSeal
    from keyturn.ports import Clock, CodeVerifier, KeyStore, Notifier, SecondFactor
    from keyturn.signatures import SignedRequest

__all__ = ["UNSET", "WRITE_ATTEMPTS", "KeyService"]


@attrs.define(kw_only=True)
class KeyService:
    """The key lifecycle, over a store, a code verifier, a notifier and a clock.

    ``owner`` on every method is the account acting on its own keys; a key of another owner is
    reported exactly like a missing one. ``actor`` (default: the owner) is recorded in history.
    With a ``secret_box`` every new secret is also kept sealed, so the key can sign requests.
    ``code_seal`` seals the codes waiting in the outbox; every service and relay sharing a store
    needs the same one (:func:`keyturn.wiring.build_service` derives it from the server key).
    """

    store: KeyStore
    verifier: CodeVerifier
    notifier: Notifier
    clock: Clock
    secret_hasher: SecretHasher
    code_seal: CodeSeal
    policy: Policy = attrs.field(factory=Policy)
    secret_box: SecretBox | None = None
    second_factor: SecondFactor | None = None
    logger: Any = attrs.field(factory=get_logger)
    deliver_inline: bool = attrs.field(default=True, on_setattr=forward_to_ops)
    relay: OutboxRelay = attrs.field(init=False)
    _ops: Operations = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self.relay = OutboxRelay(
            store=self.store,
            notifier=self.notifier,
            clock=self.clock,
            code_seal=self.code_seal,
            logger=self.logger,
        )
        self._ops = Operations(
            clock=self.clock,
            secret_hasher=self.secret_hasher,
            code_seal=self.code_seal,
            policy=self.policy,
            logger=self.logger,
            relay=self.relay,
            well_formed=self._well_formed,
            secret_box=self.secret_box,
            second_factor=self.second_factor,
            deliver_inline=self.deliver_inline,
        )

    def _well_formed(self, code: str) -> bool:
        return self.verifier.is_well_formed(code)  # the verifier may be swapped after init

    def _run(self, op: Op[T]) -> T:
        ports = {"store": self.store, "verifier": self.verifier, "notifier": self.notifier}
        return effects.run(op, ports)

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
        enable: bool = False,
    ) -> IssuedSecret:
        """A new key in ``created``. The answer carries its secret: the only time it is given out.

        With ``public_key`` (PEM: Ed25519, or RSA of 2048 bits or more) the key authenticates by
        signature only and has no secret. With ``enable`` (only under a ``direct_enable``
        policy, as the API's) the key is also acknowledged (this answer is the one showing of the
        secret) and enabled, all in one atomic write: a refusal writes nothing.
        """
        return self._run(
            self._ops.create(
                owner=owner,
                name=name,
                max_scope=max_scope,
                ip_whitelist=ip_whitelist,
                enabled_features=enabled_features,
                public_key=public_key,
                actor=actor,
                confirmation=confirmation,
                enable=enable,
            )
        )

    def acknowledge_secret(self, key_id: object, *, owner: object, actor: object = None) -> ApiKey:
        """Record "I saved the secret": ``created`` -> ``secret_acknowledged``."""
        return self._run(self._ops.acknowledge_secret(key_id, owner=owner, actor=actor))

    def request_activation(self, key_id: object, *, owner: object, actor: object = None) -> ApiKey:
        """ACTIVATE: a code goes to the owner; the key waits in ``pending_2fa``."""
        return self._run(self._ops.send_code(key_id, owner, actor, Action.REQUEST_ACTIVATION))

    def resend_code(self, key_id: object, *, owner: object, actor: object = None) -> ApiKey:
        """A fresh code replaces the last one; allowed from ``resend_after`` after the last send."""
        return self._run(self._ops.send_code(key_id, owner, actor, Action.RESEND_CODE))

    def verify_code(
        self, key_id: object, code: object, *, owner: object, actor: object = None
    ) -> ApiKey:
        """The owner enters the code: ``pending_2fa`` -> ``active`` if it is right and in time.

        A wrong code raises :class:`~keyturn.core.errors.CodeMismatch` and is counted.
        """
        return self._run(self._ops.verify_code(key_id, code, owner=owner, actor=actor))

    def cancel_activation(self, key_id: object, *, owner: object, actor: object = None) -> ApiKey:
        """The code dialog was closed: back to the state activation started from."""
        return self._run(self._ops.cancel_activation(key_id, owner=owner, actor=actor))

    def disable(
        self,
        key_id: object,
        *,
        owner: object,
        actor: object = None,
        confirmation: Confirmation | None = None,
    ) -> ApiKey:
        """Deactivate: ``active`` -> ``disabled``, effective on the next authentication."""
        return self._run(
            self._ops.disable(key_id, owner=owner, actor=actor, confirmation=confirmation)
        )

    def enable(self, key_id: object, *, owner: object, actor: object = None) -> ApiKey:
        """Re-activate a disabled key: through a code, or directly if the policy allows."""
        return self._run(self._ops.enable(key_id, owner=owner, actor=actor))

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
        enabled: bool | None = None,
    ) -> ApiKey:
        """Change name, scope, whitelist or features; fields left ``UNSET`` stay as they are.

        Editing anything but the name of an ``active`` key disables it (policy
        ``edit_deactivates``). An edit that changes nothing writes nothing. ``enabled`` (Deribit's
        ``edit_api_key``) then enables (directly: ``direct_enable`` policy only) or disables the
        key in the same atomic write: if either step is refused, nothing is written.
        """
        return self._run(
            self._ops.edit(
                key_id,
                owner=owner,
                name=name,
                max_scope=max_scope,
                ip_whitelist=ip_whitelist,
                enabled_features=enabled_features,
                actor=actor,
                confirmation=confirmation,
                enabled=enabled,
            )
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
        return self._run(
            self._ops.reset_secret(key_id, owner=owner, actor=actor, confirmation=confirmation)
        )

    def remove(
        self,
        key_id: object,
        *,
        owner: object,
        actor: object = None,
        confirmation: Confirmation | None = None,
    ) -> ApiKey:
        """Remove for good. The record and its history stay, for audit; a sealed secret does not."""
        return self._run(
            self._ops.remove(key_id, owner=owner, actor=actor, confirmation=confirmation)
        )

    def unlock_activation(self, key_id: object, *, actor: object) -> ApiKey:
        """Operator only: clear the consecutive-failure lock. No owner check: guard the caller."""
        return self._run(self._ops.unlock_activation(key_id, actor=actor))

    # --- reading ----------------------------------------------------------------------------

    def get(self, key_id: object, *, owner: object) -> ApiKey:
        """One key of ``owner`` (removed ones too)."""
        return self._run(self._ops.get(key_id, owner=owner))

    def list_keys(self, *, owner: object, include_removed: bool = False) -> list[ApiKey]:
        """The owner's keys, by id; live ones only unless ``include_removed``."""
        return self._run(self._ops.list_keys(owner=owner, include_removed=include_removed))

    def history(self, key_id: object, *, owner: object) -> list[HistoryEntry]:
        """The key's audit trail, oldest first."""
        return self._run(self._ops.history(key_id, owner=owner))

    def access_log(
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
        op = self._ops.access_log(owner=owner, events=events, offset=offset, limit=limit)
        return self._run(op)

    # --- authentication ---------------------------------------------------------------------

    def authenticate(self, client_id: object, secret: object, *, source_ip: object) -> Principal:
        """Check credentials: only an ``active`` key, the right secret, a whitelisted address.

        Reads the store on every call (no cache), so a key disabled a moment ago fails now.
        ``source_ip`` is the peer your server reports; ``None`` or a name that is no address
        (a Unix socket, Starlette's ``"testclient"``) is an unknown address, which only a key
        without an IP whitelist accepts. Raises :class:`~keyturn.core.errors.AuthenticationFailed`
        with one message whatever failed.
        """
        auth = self._ops.authenticator
        return self._run(auth.authenticate(client_id, secret, source_ip=source_ip))

    def authenticate_signature(self, signed: SignedRequest, *, source_ip: object) -> Principal:
        """Check a signed request (:mod:`keyturn.signatures`): signature, window, nonce, state.

        A key with a public key is checked against it; a key with a secret needs the secret
        sealed (a service with a ``secret_box``). Raises
        :class:`~keyturn.core.errors.AuthenticationFailed` with one message whatever failed.
        """
        auth = self._ops.authenticator
        return self._run(auth.authenticate_signature(signed, source_ip=source_ip))

    def reseal_secrets(self) -> tuple[int, int]:
        """Re-seal every sealed secret not under the box's current key.

        Returns how many were re-sealed and how many still are not under the current key
        (changed meanwhile: run again). Needs every old key still in the ring.
        """
        return self._run(self._ops.reseal_secrets())

    # --- security keys (Deribit's per-call 2FA) ---------------------------------------------

    def enroll_security_key(
        self, owner: object, *, name: object = "authenticator", issuer: object = "keyturn"
    ) -> SecurityKeyEnrollment:
        """A TOTP security key for ``owner``; replaces (and so unlocks) an earlier one.

        The answer carries the secret and its ``otpauth://`` URI for the person's authenticator
        app: the only time they are given out. Needs a ``second_factor`` and a ``secret_box``.
        """
        return self._run(self._ops.security_keys.enroll(owner, name, issuer))

    def remove_security_key(self, owner: object) -> bool:
        """Forget ``owner``'s security key (guarded calls pass again); whether there was one."""
        return self._run(self._ops.security_keys.remove(owner))

    def security_key(self, owner: object) -> SecurityKey | None:
        """``owner``'s security key (no secret in it), or ``None``."""
        return self._run(self._ops.security_keys.get(owner))

    def authorize_call(
        self, *, owner: object, call: object, params: Mapping[str, Any], answer: object = None
    ) -> None:
        """Pass a guarded call if ``owner`` has no security key, or ``answer`` is right.

        Without ``answer`` raises :class:`~keyturn.core.errors.SecurityKeyRequired` carrying a
        challenge for this very ``call`` and ``params``; repeat with
        ``answer=SecurityAnswer(challenge, code)``. See :mod:`keyturn.security_keys`.
        """
        op = self._ops.security_keys.authorize(owner=owner, call=call, params=params, answer=answer)
        self._run(op)
