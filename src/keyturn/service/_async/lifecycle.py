"""The lifecycle of a key as the service runs it: one method per command on a stored key.

Each method validates its input, builds the command, and runs it through :meth:`_act`:

1. load the key (another owner's key is reported as missing);
2. confirm the request by code if the policy asks (:mod:`.confirm`);
3. ask :func:`keyturn.core.decide.decide`; answer each need it returns through the code
   verifier, and ask again;
4. write the change in one atomic store call, sealing any code it queues; on a lost race, start
   again from 1 (at most :data:`WRITE_ATTEMPTS` times);
5. log one event per step, deliver the request's own notifications (best effort), and raise the
   decision's refusal, if any (a wrong code is counted, then refused).

Creating a key and resetting its secret, the commands that hand out a secret, are in
:mod:`.secrets`. No rule is decided here. Async source of a generated twin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from keyturn.core import commands, validation
from keyturn.core.changes import UNSET, Edit
from keyturn.core.commands import Decision
from keyturn.core.decide import decide
from keyturn.core.errors import ConcurrentUpdate, InvalidInput, KeyNotFound
from keyturn.core.lifecycle import Action
from keyturn.core.scope import Scope
from keyturn.crypto.hashing import new_id
from keyturn.service._async.base import WRITE_ATTEMPTS
from keyturn.service._async.confirm import AsyncConfirming

if TYPE_CHECKING:
    from collections.abc import Mapping

    from keyturn.core.commands import Command
    from keyturn.core.records import ApiKey, Confirmation
    from keyturn.ports import IssuedCode


class AsyncLifecycle(AsyncConfirming):
    """The lifecycle commands (part of :class:`~keyturn.service.AsyncKeyService`)."""

    __slots__ = ()

    async def _act(
        self,
        key_id: object,
        owner: object,
        command: Command,
        *,
        params: Mapping[str, str] | None = None,
        confirmation: Confirmation | None = None,
        loaded: ApiKey | None = None,
    ) -> ApiKey:
        """Run ``command`` on the key: the steps of this module's docstring.

        ``loaded`` is the key as the caller just read it from this service, used for the first
        attempt (saving a read; a stale copy is caught by the write's version check). A key that
        is not ``key_id`` of ``owner`` is reported as missing, as a read would.
        """
        who = validation.owner(owner)
        loaded = self._given(loaded, key_id, who, command.action)
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            key = loaded if loaded is not None else await self._load(key_id, who, command.action)
            loaded = None
            now = self.clock.now()
            challenge = await self._confirm(
                action=command.action,
                owner=who,
                key_id=key.id,
                params=params or {},
                confirmation=confirmation,
                now=now,
            )
            answer: IssuedCode | bool | None = None
            while True:
                outcome = decide(
                    key,
                    command,
                    now=now,
                    policy=self.policy,
                    new_id=new_id,
                    answer=answer,
                    challenge=challenge,
                )
                if isinstance(outcome, Decision):
                    break
                answer = await self._answer(outcome)
            if outcome.change is None:
                return key
            written = self._sealed(outcome.change)
            try:
                await self.store.apply(written, claim=self.deliver_inline)
            except ConcurrentUpdate:
                if attempt == WRITE_ATTEMPTS:
                    raise
                continue
            stored = await self._committed(written)
            if outcome.refusal is not None:
                raise outcome.refusal
            return stored
        raise AssertionError  # pragma: no cover (the loop returns or raises)

    async def acknowledge_secret(
        self, key_id: object, *, owner: object, actor: object = None
    ) -> ApiKey:
        """Record "I saved the secret": ``created`` -> ``secret_acknowledged``."""
        return await self._act(key_id, owner, commands.Acknowledge(self._actor(actor, owner)))

    async def request_activation(
        self, key_id: object, *, owner: object, actor: object = None
    ) -> ApiKey:
        """ACTIVATE: open the code dialog; the key waits in ``pending_2fa``.

        A code is sent, unless the key's last code is still live and a resend is not open yet:
        then the dialog reopens with that code (closing the dialog and pressing ACTIVATE again
        does not send another code before ``resend_after``).
        """
        return await self._act(key_id, owner, commands.RequestActivation(self._actor(actor, owner)))

    async def resend_code(self, key_id: object, *, owner: object, actor: object = None) -> ApiKey:
        """A fresh code replaces the last one; allowed from ``resend_after`` after the last send."""
        return await self._act(key_id, owner, commands.Resend(self._actor(actor, owner)))

    async def verify_code(
        self, key_id: object, code: object, *, owner: object, actor: object = None
    ) -> ApiKey:
        """The owner enters the code: ``pending_2fa`` -> ``active`` if it is right and in time.

        A wrong code raises :class:`~keyturn.core.errors.CodeMismatch` and is counted.
        """
        candidate = self._code_shape(code, Action.VERIFY_CODE)
        return await self._act(key_id, owner, commands.Verify(self._actor(actor, owner), candidate))

    async def cancel_activation(
        self, key_id: object, *, owner: object, actor: object = None
    ) -> ApiKey:
        """The code dialog was closed: back to where activation started; the code stays live."""
        return await self._act(key_id, owner, commands.Cancel(self._actor(actor, owner)))

    async def disable(
        self,
        key_id: object,
        *,
        owner: object,
        actor: object = None,
        confirmation: Confirmation | None = None,
        loaded: ApiKey | None = None,
    ) -> ApiKey:
        """Deactivate: ``active`` -> ``disabled``, effective on the next authentication.

        ``loaded`` (here and in the other commands): the key as the caller just read it with
        :meth:`get`, which spares reading it again.
        """
        command = commands.Disable(self._actor(actor, owner))
        return await self._act(key_id, owner, command, confirmation=confirmation, loaded=loaded)

    async def enable(
        self, key_id: object, *, owner: object, actor: object = None, loaded: ApiKey | None = None
    ) -> ApiKey:
        """Activate a key: directly if the policy allows (``direct_enable``), else by a code."""
        command = commands.Enable(self._actor(actor, owner))
        return await self._act(key_id, owner, command, loaded=loaded)

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
        loaded: ApiKey | None = None,
    ) -> ApiKey:
        """Change name, scope, whitelist or features; fields left ``UNSET`` stay as they are.

        Editing anything but the name of an ``active`` key disables it (policy
        ``edit_deactivates``); editing a key waiting for its code ends that code. An edit that
        changes nothing writes nothing. ``enabled`` (Deribit's ``edit_api_key``) then enables
        (directly: ``direct_enable`` policy only) or disables the key in the same atomic write:
        if either step is refused, nothing is written.
        """
        if enabled is not None and not isinstance(enabled, bool):
            raise InvalidInput("enabled", "must be true, false or left out")
        fields = Edit(
            name=None if name is UNSET else validation.name(name),
            max_scope=None if max_scope is UNSET else Scope.parse(max_scope),
            ip_whitelist=None if ip_whitelist is UNSET else validation.ip_whitelist(ip_whitelist),
            enabled_features=(
                None if enabled_features is UNSET else validation.enabled_features(enabled_features)
            ),
        )
        params = {
            f: str(v) for f, v in attrs.asdict(fields, recurse=False).items() if v is not None
        }
        if enabled is not None:
            params["enabled"] = str(enabled)
        command = commands.Edit(self._actor(actor, owner), fields, enabled)
        return await self._act(
            key_id, owner, command, params=params, confirmation=confirmation, loaded=loaded
        )

    async def remove(
        self,
        key_id: object,
        *,
        owner: object,
        actor: object = None,
        confirmation: Confirmation | None = None,
        loaded: ApiKey | None = None,
    ) -> ApiKey:
        """Remove for good. The record and its history stay, for audit; a sealed secret does not."""
        command = commands.Remove(self._actor(actor, owner))
        return await self._act(key_id, owner, command, confirmation=confirmation, loaded=loaded)

    async def unlock_activation(self, key_id: object, *, actor: object) -> ApiKey:
        """Operator only: clear the consecutive-failure lock. No owner check: guard the caller."""
        by = validation.actor(actor)
        key = await self.store.get(validation.key_id(key_id))
        if key is None:
            raise KeyNotFound(key_id, action=Action.UNLOCK_ACTIVATION.value)
        return await self._act(key.id, key.owner, commands.Unlock(by), loaded=key)
