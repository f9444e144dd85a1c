"""Deribit's per-call 2FA ("security keys"): enroll one, challenge a guarded call, check its code.

While an account has a security key, every call the caller guards (the API guards create, edit,
disable, change scope and list) goes in two rounds:

1. without an answer, :meth:`authorize_call` raises
   :class:`~keyturn.core.errors.SecurityKeyRequired` with a challenge, valid for
   ``Policy.security_challenge_ttl`` (one minute) and for this owner, call and parameters only;
2. the same call repeated with :class:`~keyturn.core.records.SecurityAnswer` (the challenge and
   the code) passes if the code is right.

A challenge is a keyed MAC over owner, call, parameters, expiry and a random id: nothing is
stored when it is issued, and it cannot be forged or moved to another request. It is spent
(through the store's single-use nonces, so on every worker) the first time a code comes back
with it, right or wrong. The rules of codes are :mod:`keyturn.core.security_keys`'; the update
of the key is a compare-and-swap. Nothing here logs a secret, a code or a challenge. Async
source of a generated twin.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, NoReturn

import attrs

from keyturn.core import security_keys, validation
from keyturn.core.errors import (
    ConcurrentUpdate,
    InvalidInput,
    SecurityKeyRefused,
    SecurityKeyRequired,
)
from keyturn.core.records import SecurityAnswer, SecurityKey, SecurityKeyEnrollment
from keyturn.crypto.hashing import new_token
from keyturn.service._async.base import AsyncServiceBase

if TYPE_CHECKING:
    from collections.abc import Mapping

    from keyturn.crypto.sealing import SecretBox
    from keyturn.ports.common import SecondFactor

#: Longest challenge or call name accepted before any work is done.
MAX_CHALLENGE: Final = 200
MAX_CALL: Final = 64
#: Compare-and-swap attempts on the security key before the conflict is handed on.
_ATTEMPTS: Final = 4
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _context(owner: str) -> str:
    return f"security-key:{owner}"


def _answer(answer: object) -> SecurityAnswer | None:
    """``answer`` if it is ``None`` or a well-shaped answer; else InvalidInput."""
    if answer is None:
        return None
    if not isinstance(answer, SecurityAnswer):
        raise InvalidInput("answer", "must be a SecurityAnswer")
    challenge, code = answer.challenge, answer.code
    validation.text(challenge, "challenge", max_length=MAX_CHALLENGE, min_length=1)
    if not isinstance(code, str) or len(code) > MAX_CHALLENGE:
        raise InvalidInput("authorization_data", "must be the code as a string")
    return answer


class AsyncSecurityKeys(AsyncServiceBase):
    """Security keys (part of :class:`~keyturn.service.AsyncKeyService`)."""

    __slots__ = ()

    def _factor_ready(self) -> tuple[SecondFactor, SecretBox]:
        if self.second_factor is None or self.secret_box is None:
            raise InvalidInput(
                "second_factor",
                "security keys need a second_factor (keyturn[totp]) and a secret_box "
                "(sealed secrets) on the service",
            )
        return self.second_factor, self.secret_box

    # --- enrollment -------------------------------------------------------------------------

    async def enroll_security_key(
        self, owner: object, *, name: object = "authenticator", issuer: object = "keyturn"
    ) -> SecurityKeyEnrollment:
        """A new TOTP security key for ``owner``, replacing (and unlocking) any earlier one.

        The answer carries the secret and its ``otpauth://`` URI: the only time they are given
        out. Needs a ``second_factor`` (extra ``totp``) and a ``secret_box``.
        """
        who, label = validation.owner(owner), validation.name(name)
        if not isinstance(issuer, str) or not 0 < len(issuer) <= MAX_CALL:
            raise InvalidInput("issuer", f"must be a string of 1 to {MAX_CALL} characters")
        factor, box = self._factor_ready()
        secret = factor.new_secret()
        for _ in range(_ATTEMPTS):
            existing = await self.store.get_security_key(who)
            key = SecurityKey(
                owner=who,
                name=label,
                kind=factor.kind,
                sealed_secret=box.seal(secret, context=_context(who)),
                created_at=self.clock.now(),
                version=1 if existing is None else existing.version + 1,
            )
            try:
                await self.store.save_security_key(key)
            except ConcurrentUpdate:
                continue
            self.logger.info("security_key_enrolled", owner=who, kind=key.kind, key_name=label)
            uri = factor.provisioning_uri(secret, account=who, issuer=issuer)
            return SecurityKeyEnrollment(key, secret, uri)
        raise ConcurrentUpdate(0, 0, action="security_key")

    async def remove_security_key(self, owner: object) -> bool:
        """Forget ``owner``'s security key; whether there was one."""
        who = validation.owner(owner)
        removed = await self.store.remove_security_key(who)
        if removed:
            self.logger.info("security_key_removed", owner=who)
        return removed

    async def security_key(self, owner: object) -> SecurityKey | None:
        """``owner``'s security key (without its secret), or ``None``."""
        return await self.store.get_security_key(validation.owner(owner))

    async def _reseal_security_keys(self, box: SecretBox) -> tuple[int, int]:
        """Re-seal security keys not under ``box``'s current key: how many, and how many left."""
        done = 0
        for key in await self.store.list_security_keys():
            if box.needs_reseal(key.sealed_secret):
                sealed = box.reseal(key.sealed_secret, context=_context(key.owner))
                try:
                    await self.store.save_security_key(
                        attrs.evolve(key, sealed_secret=sealed, version=key.version + 1)
                    )
                except ConcurrentUpdate:
                    continue
                done += 1
        after = await self.store.list_security_keys()
        return done, sum(1 for k in after if box.needs_reseal(k.sealed_secret))

    # --- authorizing a call -----------------------------------------------------------------

    async def authorize_call(
        self,
        *,
        owner: object,
        call: object,
        params: Mapping[str, Any],
        answer: object = None,
        enrolled: bool | None = None,
    ) -> None:
        """Let the call through if the account has no security key or ``answer`` is right.

        Otherwise raises :class:`SecurityKeyRequired` (no answer), :class:`SecurityKeyRefused`,
        :class:`SecurityKeyLocked` or :class:`InvalidInput` (a malformed answer). ``enrolled`` is
        what the caller read about the account in this same request (a token check reads it
        with the session): ``False`` spares asking the store again; ``None`` (unknown) or
        ``True`` has the key read here.
        """
        who = validation.owner(owner)
        if not isinstance(call, str) or not 0 < len(call) <= MAX_CALL:
            raise InvalidInput("call", f"must be a string of 1 to {MAX_CALL} characters")
        checked = _answer(answer)
        digest = security_keys.call_digest(call, params)
        key = None if enrolled is False else await self.store.get_security_key(who)
        if key is None:
            return
        factor, box = self._factor_ready()
        security_keys.check_not_locked(key, self.policy, call)
        now = self.clock.now()
        if checked is None:
            self._security_challenge(key, call, digest, now)
        if not checked.code:
            raise SecurityKeyRefused(
                "tfa_code_is_required", "the challenge came back without a code", call=call
            )
        if not factor.is_well_formed(checked.code):
            raise InvalidInput("authorization_data", "is not a well-formed code", action=call)
        nonce, expires_at = self._open_challenge(checked.challenge, who, call, digest)
        if now >= expires_at:
            raise SecurityKeyRefused("challenge_timeout", "the challenge has expired", call=call)
        fresh = await self.store.use_nonce(
            f"security-challenge:{who}", nonce, expires_at=expires_at, now=now
        )
        if not fresh:
            raise SecurityKeyRefused("used_tfa_code", "the challenge was used before", call=call)
        secret = box.open(key.sealed_secret, context=_context(who))
        await self._record_code(key, factor.match(secret, checked.code, now), call)

    def _challenge_mac(self, owner: str, digest: str, nonce: str, expires_us: int) -> str:
        return self.secret_hasher.digest(
            f"security-challenge\x00{owner}\x00{digest}\x00{nonce}\x00{expires_us}"
        )

    def _security_challenge(
        self, key: SecurityKey, call: str, digest: str, now: datetime
    ) -> NoReturn:
        expires_at = now + self.policy.security_challenge_ttl
        expires_us = (expires_at - _EPOCH) // timedelta(microseconds=1)
        nonce = new_token()
        mac = self._challenge_mac(key.owner, digest, nonce, expires_us)
        self.logger.info("security_key_challenged", owner=key.owner, call=call)
        raise SecurityKeyRequired(
            challenge=f"{nonce}.{expires_us}.{mac}",
            expires_at=expires_at,
            call=call,
            security_keys=((key.kind, key.name),),
        )

    def _open_challenge(
        self, challenge: str, owner: str, call: str, digest: str
    ) -> tuple[str, datetime]:
        """The challenge's nonce and expiry, if this server issued it for this very call."""
        nonce, _, rest = challenge.partition(".")
        expires_text, _, mac = rest.partition(".")
        # An issued challenge is ASCII (and hmac.compare_digest refuses to compare other text).
        if nonce and rest.isascii() and expires_text.isdigit():
            expires_us = int(expires_text)
            if hmac.compare_digest(self._challenge_mac(owner, digest, nonce, expires_us), mac):
                return nonce, _EPOCH + timedelta(microseconds=expires_us)
        raise SecurityKeyRefused(
            "tfa_code_not_matched", "the challenge was not issued for this call", call=call
        )

    async def _record_code(self, key: SecurityKey, step: int | None, call: str) -> None:
        """Count a wrong code, or accept a right one once: a compare-and-swap on the key."""
        for _ in range(_ATTEMPTS):
            try:
                saved = security_keys.recorded(key, step, call)
            except SecurityKeyRefused:
                self.logger.info("security_key_rejected", owner=key.owner, reason="used_tfa_code")
                raise
            try:
                await self.store.save_security_key(saved)
            except ConcurrentUpdate:
                current = await self.store.get_security_key(key.owner)
                if current is None or current.sealed_secret != key.sealed_secret:
                    raise SecurityKeyRefused(
                        "tfa_code_not_matched", "the security key changed meanwhile", call=call
                    ) from None
                key = current
                continue
            if step is None:
                self.logger.info(
                    "security_key_rejected", owner=key.owner, reason="tfa_code_not_matched"
                )
                raise security_keys.refused(call)
            self.logger.info("security_key_accepted", owner=key.owner, call=call)
            return
        raise ConcurrentUpdate(0, key.version, action="security_key")
