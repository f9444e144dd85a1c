"""The commands that hand out a secret: creating a key, and resetting its secret.

The secret is drawn here (:mod:`secrets`), stored only as its keyed digest (and sealed, where a
``secret_box`` keeps secrets recoverable for signatures), and handed out once, in the answer.
Creating writes a new key under the owner's quota (the core's :func:`~keyturn.core.decide.create`
builds the change); resetting runs through :meth:`~.lifecycle.AsyncLifecycle._act` like every
other command. No rule is decided here. Async source of a generated twin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keyturn.core import commands, validation
from keyturn.core.decide import create as create_key
from keyturn.core.errors import ConcurrentUpdate, InvalidInput
from keyturn.core.lifecycle import Action, State
from keyturn.core.records import ApiKey, IssuedSecret
from keyturn.core.scope import Scope
from keyturn.crypto.hashing import new_client_id, new_id, new_secret
from keyturn.service._async.base import WRITE_ATTEMPTS
from keyturn.service._async.lifecycle import AsyncLifecycle

if TYPE_CHECKING:
    from keyturn.core.records import Confirmation


class AsyncSecrets(AsyncLifecycle):
    """Create and reset-secret (part of :class:`~keyturn.service.AsyncKeyService`)."""

    __slots__ = ()

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
        """A new key in ``created``. The answer carries its secret: the only time it is given out.

        With ``public_key`` (PEM: Ed25519, or RSA of 2048 bits or more) the key authenticates by
        signature only and has no secret. With ``enable`` (only under a ``direct_enable``
        policy, as the API's) the key is also acknowledged (this answer is the one showing of the
        secret) and enabled, all in one atomic write: a refusal writes nothing.
        """
        if not isinstance(enable, bool):
            raise InvalidInput("enable", "must be true or false")
        who = validation.owner(owner)
        by = self._actor(actor, who)
        name_, scope = validation.name(name), Scope.parse(max_scope)
        whitelist = validation.ip_whitelist(ip_whitelist)
        features = validation.enabled_features(enabled_features)
        pem = validation.public_key(public_key)
        params = {
            "name": name_,
            "max_scope": str(scope),
            "ip_whitelist": str(whitelist),
            "enabled_features": str(features),
            "public_key": pem[1] if pem else "",
        }
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            now = self.clock.now()
            challenge = await self._confirm(
                action=Action.CREATE,
                owner=who,
                key_id=None,
                params=params,
                confirmation=confirmation,
                now=now,
            )
            secret = None if pem else new_secret()
            client_id = new_client_id()
            draft = ApiKey(
                id=0,
                owner=who,
                client_id=client_id,
                name=name_,
                max_scope=scope,
                ip_whitelist=whitelist,
                enabled_features=features,
                state=State.CREATED,
                version=0,
                created_at=now,
                updated_at=now,
                fingerprint=pem[1] if pem else self.secret_hasher.fingerprint(secret or ""),
                secret_digest=self.secret_hasher.digest(secret) if secret else None,
                public_key=pem[0] if pem else None,
                sealed_secret=self._sealed_secret(secret, client_id),
            )
            change = create_key(
                draft,
                actor=by,
                now=now,
                policy=self.policy,
                new_id=new_id,
                challenge=challenge,
                enable=enable,
            )
            written = self._sealed(change)
            try:
                stored = await self.store.insert(
                    written,
                    max_live_per_owner=self.policy.max_keys_per_owner,
                    claim=self.deliver_inline,
                )
            except ConcurrentUpdate:  # a client id drawn twice: draw again
                if attempt == WRITE_ATTEMPTS:
                    raise
                continue
            await self._committed(written.with_key_id(stored.id))
            return IssuedSecret(stored, secret)
        raise AssertionError  # pragma: no cover (the loop returns or raises)

    def _sealed_secret(self, secret: str | None, client_id: str) -> str | None:
        """The secret sealed for signatures, if this service keeps secrets recoverable."""
        if secret is None or self.secret_box is None:
            return None
        return self.secret_box.seal(secret, context=client_id)

    async def reset_secret(
        self,
        key_id: object,
        *,
        owner: object,
        actor: object = None,
        confirmation: Confirmation | None = None,
        loaded: ApiKey | None = None,
    ) -> IssuedSecret:
        """A new secret, handed out in this answer only; the old one stops working at once."""
        secret = new_secret()
        by = self._actor(actor, owner)
        who = validation.owner(owner)
        key = self._given(loaded, key_id, who, Action.RESET_SECRET) or await self._load(
            key_id, who, Action.RESET_SECRET
        )
        new = commands.NewSecret(
            digest=self.secret_hasher.digest(secret),
            fingerprint=self.secret_hasher.fingerprint(secret),
            sealed=self._sealed_secret(secret, key.client_id),
        )
        command = commands.ResetSecret(by, new)
        done = await self._act(key.id, who, command, confirmation=confirmation, loaded=key)
        return IssuedSecret(done, secret)
