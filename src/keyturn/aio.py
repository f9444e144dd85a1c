"""The asynchronous service: :class:`~keyturn.service.KeyService`'s methods, awaited.

It runs the very same operations (:mod:`keyturn.operations`) as the sync service, against async
ports (:class:`~keyturn.ports.AsyncKeyStore`, :class:`~keyturn.ports.AsyncCodeVerifier`,
:class:`~keyturn.ports.AsyncNotifier`) with :func:`keyturn.effects.run_async`. Every decision is
shared; this module only awaits. Sync adapters become async ports through
:mod:`keyturn.adapters.to_async`; PostgreSQL has a native one
(:class:`~keyturn.adapters.postgres_async.AsyncPostgresKeyStore`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from keyturn import effects
from keyturn._log import get_logger
from keyturn.core.lifecycle import Action
from keyturn.core.policy import Policy
from keyturn.operations import UNSET, Operations, forward_to_ops
from keyturn.outbox import AsyncOutboxRelay

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
    from keyturn.ports import AsyncCodeVerifier, AsyncKeyStore, AsyncNotifier, Clock, SecondFactor
    from keyturn.signatures import SignedRequest


@attrs.define(kw_only=True)
class AsyncKeyService:
    """The key lifecycle over async ports. Methods as :class:`~keyturn.service.KeyService`."""

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
    deliver_inline: bool = attrs.field(default=True, on_setattr=forward_to_ops)
    relay: AsyncOutboxRelay = attrs.field(init=False)
    _ops: Operations = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self.relay = AsyncOutboxRelay(
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
        return self.verifier.is_well_formed(code)

    async def _run(self, op: Op[T]) -> T:
        ports = {"store": self.store, "verifier": self.verifier, "notifier": self.notifier}
        return await effects.run_async(op, ports)

    async def create(
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
        """See :meth:`keyturn.service.KeyService.create`."""
        return await self._run(
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

    async def acknowledge_secret(
        self, key_id: object, *, owner: object, actor: object = None
    ) -> ApiKey:
        """See :meth:`keyturn.service.KeyService.acknowledge_secret`."""
        return await self._run(self._ops.acknowledge_secret(key_id, owner=owner, actor=actor))

    async def request_activation(
        self, key_id: object, *, owner: object, actor: object = None
    ) -> ApiKey:
        """See :meth:`keyturn.service.KeyService.request_activation`."""
        return await self._run(self._ops.send_code(key_id, owner, actor, Action.REQUEST_ACTIVATION))

    async def resend_code(self, key_id: object, *, owner: object, actor: object = None) -> ApiKey:
        """See :meth:`keyturn.service.KeyService.resend_code`."""
        return await self._run(self._ops.send_code(key_id, owner, actor, Action.RESEND_CODE))

    async def verify_code(
        self, key_id: object, code: object, *, owner: object, actor: object = None
    ) -> ApiKey:
        """See :meth:`keyturn.service.KeyService.verify_code`."""
        return await self._run(self._ops.verify_code(key_id, code, owner=owner, actor=actor))

    async def cancel_activation(
        self, key_id: object, *, owner: object, actor: object = None
    ) -> ApiKey:
        """See :meth:`keyturn.service.KeyService.cancel_activation`."""
        return await self._run(self._ops.cancel_activation(key_id, owner=owner, actor=actor))

    async def disable(
        self,
        key_id: object,
        *,
        owner: object,
        actor: object = None,
        confirmation: Confirmation | None = None,
    ) -> ApiKey:
        """See :meth:`keyturn.service.KeyService.disable`."""
        return await self._run(
            self._ops.disable(key_id, owner=owner, actor=actor, confirmation=confirmation)
        )

    async def enable(self, key_id: object, *, owner: object, actor: object = None) -> ApiKey:
        """See :meth:`keyturn.service.KeyService.enable`."""
        return await self._run(self._ops.enable(key_id, owner=owner, actor=actor))

    async def edit(
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
        """See :meth:`keyturn.service.KeyService.edit`."""
        return await self._run(
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

    async def reset_secret(
        self,
        key_id: object,
        *,
        owner: object,
        actor: object = None,
        confirmation: Confirmation | None = None,
    ) -> IssuedSecret:
        """See :meth:`keyturn.service.KeyService.reset_secret`."""
        return await self._run(
            self._ops.reset_secret(key_id, owner=owner, actor=actor, confirmation=confirmation)
        )

    async def remove(
        self,
        key_id: object,
        *,
        owner: object,
        actor: object = None,
        confirmation: Confirmation | None = None,
    ) -> ApiKey:
        """See :meth:`keyturn.service.KeyService.remove`."""
        return await self._run(
            self._ops.remove(key_id, owner=owner, actor=actor, confirmation=confirmation)
        )

    async def unlock_activation(self, key_id: object, *, actor: object) -> ApiKey:
        """See :meth:`keyturn.service.KeyService.unlock_activation`."""
        return await self._run(self._ops.unlock_activation(key_id, actor=actor))

    async def get(self, key_id: object, *, owner: object) -> ApiKey:
        """See :meth:`keyturn.service.KeyService.get`."""
        return await self._run(self._ops.get(key_id, owner=owner))

    async def list_keys(self, *, owner: object, include_removed: bool = False) -> list[ApiKey]:
        """See :meth:`keyturn.service.KeyService.list_keys`."""
        return await self._run(self._ops.list_keys(owner=owner, include_removed=include_removed))

    async def history(self, key_id: object, *, owner: object) -> list[HistoryEntry]:
        """See :meth:`keyturn.service.KeyService.history`."""
        return await self._run(self._ops.history(key_id, owner=owner))

    async def access_log(
        self,
        *,
        owner: object,
        events: Collection[str] | None = None,
        offset: object = 0,
        limit: object = 10,
    ) -> list[KeyEvent]:
        """See :meth:`keyturn.service.KeyService.access_log`."""
        op = self._ops.access_log(owner=owner, events=events, offset=offset, limit=limit)
        return await self._run(op)

    async def authenticate(
        self, client_id: object, secret: object, *, source_ip: object
    ) -> Principal:
        """See :meth:`keyturn.service.KeyService.authenticate`."""
        auth = self._ops.authenticator
        return await self._run(auth.authenticate(client_id, secret, source_ip=source_ip))

    async def authenticate_signature(
        self, signed: SignedRequest, *, source_ip: object
    ) -> Principal:
        """See :meth:`keyturn.service.KeyService.authenticate_signature`."""
        auth = self._ops.authenticator
        return await self._run(auth.authenticate_signature(signed, source_ip=source_ip))

    async def reseal_secrets(self) -> tuple[int, int]:
        """See :meth:`keyturn.service.KeyService.reseal_secrets`."""
        return await self._run(self._ops.reseal_secrets())

    # --- security keys ----------------------------------------------------------------------

    async def enroll_security_key(
        self, owner: object, *, name: object = "authenticator", issuer: object = "keyturn"
    ) -> SecurityKeyEnrollment:
        """See :meth:`keyturn.service.KeyService.enroll_security_key`."""
        return await self._run(self._ops.security_keys.enroll(owner, name, issuer))

    async def remove_security_key(self, owner: object) -> bool:
        """See :meth:`keyturn.service.KeyService.remove_security_key`."""
        return await self._run(self._ops.security_keys.remove(owner))

    async def security_key(self, owner: object) -> SecurityKey | None:
        """See :meth:`keyturn.service.KeyService.security_key`."""
        return await self._run(self._ops.security_keys.get(owner))

    async def authorize_call(
        self, *, owner: object, call: object, params: Mapping[str, Any], answer: object = None
    ) -> None:
        """See :meth:`keyturn.service.KeyService.authorize_call`."""
        op = self._ops.security_keys.authorize(owner=owner, call=call, params=params, answer=answer)
        await self._run(op)
