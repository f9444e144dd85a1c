"""Deribit's per-call 2FA ("security keys"): challenge a guarded call, check the code it returns.

An account may enroll one security key: a TOTP secret shared with the person's authenticator app
(:class:`~keyturn.ports.SecondFactor`), kept sealed. While it has one, every call the caller
guards (the API guards create, edit, disable, change scope and list) goes in two rounds:

1. without an answer, :meth:`SecurityKeys.authorize` raises
   :class:`~keyturn.errors.SecurityKeyRequired` with a challenge, valid for
   ``Policy.security_challenge_ttl`` (one minute) and for this owner, call and parameters only;
2. the same call repeated with :class:`~keyturn.records.SecurityAnswer` (the challenge and the
   code) passes if the code is right.

The rules:

* A challenge is a keyed MAC over owner, call, parameters, expiry and a random id: nothing is
  stored when it is issued, and it cannot be forged or moved to another request. It is spent
  (through the store's single-use nonces, so on every worker) the first time a code comes back
  with it, right or wrong: after any refusal the caller starts over, as on Deribit.
* A code is accepted once: the account remembers the TOTP step of the last accepted code, and a
  code of that step or an earlier one is ``used_tfa_code``. The update is a compare-and-swap, so
  two workers cannot both accept one code.
* ``Policy.max_consecutive_failures`` wrong codes in a row lock the account's security key
  (:class:`~keyturn.errors.SecurityKeyLocked`) until it is enrolled again.
* A malformed answer is :class:`~keyturn.errors.InvalidInput` and spends nothing.

Operations yield their store calls (:mod:`keyturn.effects`). Nothing here logs a secret, a code
or a challenge.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, NoReturn

import attrs

from keyturn import validation
from keyturn.effects import STORE
from keyturn.errors import (
    ConcurrentUpdate,
    InvalidInput,
    SecurityKeyLocked,
    SecurityKeyRefused,
    SecurityKeyRequired,
)
from keyturn.hashing import new_token
from keyturn.records import SecurityAnswer, SecurityKey, SecurityKeyEnrollment

if TYPE_CHECKING:
    from collections.abc import Mapping

    from keyturn.effects import Op
    from keyturn.hashing import SecretHasher
    from keyturn.policy import Policy
    from keyturn.ports import Clock, SecondFactor
    from keyturn.sealing import SecretBox

#: Longest challenge or call name accepted before any work is done.
MAX_CHALLENGE: Final = 200
MAX_CALL: Final = 64
#: Compare-and-swap attempts on the security key before the conflict is handed on.
_ATTEMPTS: Final = 4
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def call_digest(call: str, params: Mapping[str, Any]) -> str:
    """A digest of one exact call: a challenge answers this call and no other."""
    try:
        text = json.dumps([call, params], sort_keys=True, separators=(",", ":"), default=str)
    except (TypeError, ValueError, RecursionError):
        raise InvalidInput("params", "must be JSON-like, with string keys") from None
    return hashlib.sha256(text.encode()).hexdigest()


def _context(owner: str) -> str:
    return f"security-key:{owner}"


@attrs.define(kw_only=True)
class SecurityKeys:
    """Enrolls security keys and authorizes guarded calls with them."""

    clock: Clock
    secret_hasher: SecretHasher
    policy: Policy
    logger: Any
    second_factor: SecondFactor | None = None
    secret_box: SecretBox | None = None

    def _ready(self) -> tuple[SecondFactor, SecretBox]:
        if self.second_factor is None or self.secret_box is None:
            raise InvalidInput(
                "second_factor",
                "security keys need a second_factor (keyturn[totp]) and a secret_box "
                "(sealed secrets) on the service",
            )
        return self.second_factor, self.secret_box

    # --- enrollment -------------------------------------------------------------------------

    def enroll(self, owner: object, name: object, issuer: object) -> Op[SecurityKeyEnrollment]:
        """A new TOTP security key for ``owner``, replacing (and unlocking) any earlier one."""
        who, label = validation.owner(owner), validation.name(name)
        if not isinstance(issuer, str) or not 0 < len(issuer) <= MAX_CALL:
            raise InvalidInput("issuer", f"must be a string of 1 to {MAX_CALL} characters")
        factor, box = self._ready()
        secret = factor.new_secret()
        for _ in range(_ATTEMPTS):
            existing: SecurityKey | None = yield STORE.get_security_key(who)
            key = SecurityKey(
                owner=who,
                name=label,
                kind=factor.kind,
                sealed_secret=box.seal(secret, context=_context(who)),
                created_at=self.clock.now(),
                version=1 if existing is None else existing.version + 1,
            )
            try:
                yield STORE.save_security_key(key)
            except ConcurrentUpdate:
                continue
            self.logger.info("security_key_enrolled", owner=who, kind=key.kind, name=label)
            uri = factor.provisioning_uri(secret, account=who, issuer=issuer)
            return SecurityKeyEnrollment(key, secret, uri)
        raise ConcurrentUpdate(0, 0, action="security_key")

    def remove(self, owner: object) -> Op[bool]:
        """Forget ``owner``'s security key; whether there was one."""
        who = validation.owner(owner)
        removed: bool = yield STORE.remove_security_key(who)
        if removed:
            self.logger.info("security_key_removed", owner=who)
        return removed

    def get(self, owner: object) -> Op[SecurityKey | None]:
        """``owner``'s security key, or ``None``."""
        key: SecurityKey | None = yield STORE.get_security_key(validation.owner(owner))
        return key

    def reseal(self, box: SecretBox) -> Op[tuple[int, int]]:
        """Re-seal security keys not under ``box``'s current key: how many, and how many left."""
        done = 0
        keys: list[SecurityKey] = yield STORE.list_security_keys()
        for key in keys:
            if box.needs_reseal(key.sealed_secret):
                sealed = box.reseal(key.sealed_secret, context=_context(key.owner))
                try:
                    yield STORE.save_security_key(
                        attrs.evolve(key, sealed_secret=sealed, version=key.version + 1)
                    )
                except ConcurrentUpdate:
                    continue
                done += 1
        after: list[SecurityKey] = yield STORE.list_security_keys()
        return done, sum(1 for k in after if box.needs_reseal(k.sealed_secret))

    # --- authorizing a call -----------------------------------------------------------------

    def authorize(
        self, *, owner: object, call: object, params: Mapping[str, Any], answer: object
    ) -> Op[None]:
        """Let the call through if the account has no security key or ``answer`` is right.

        Otherwise raises :class:`SecurityKeyRequired` (no answer), :class:`SecurityKeyRefused`,
        :class:`SecurityKeyLocked` or :class:`InvalidInput` (a malformed answer).
        """
        who = validation.owner(owner)
        if not isinstance(call, str) or not 0 < len(call) <= MAX_CALL:
            raise InvalidInput("call", f"must be a string of 1 to {MAX_CALL} characters")
        checked = self._check_shape(answer)
        digest = call_digest(call, params)
        key: SecurityKey | None = yield STORE.get_security_key(who)
        if key is None:
            return
        factor, box = self._ready()
        if key.failures >= self.policy.max_consecutive_failures:
            raise SecurityKeyLocked(call=call, failures=key.failures)
        now = self.clock.now()
        if checked is None:
            self._challenge(key, call, digest, now)
        if not checked.code:
            raise SecurityKeyRefused(
                "tfa_code_is_required", "the challenge came back without a code", call=call
            )
        if not factor.is_well_formed(checked.code):
            raise InvalidInput("authorization_data", "is not a well-formed code", action=call)
        nonce, expires_at = self._open(checked.challenge, who, call, digest)
        if now >= expires_at:
            raise SecurityKeyRefused("challenge_timeout", "the challenge has expired", call=call)
        fresh = yield STORE.use_nonce(
            f"security-challenge:{who}", nonce, expires_at=expires_at, now=now
        )
        if not fresh:
            raise SecurityKeyRefused("used_tfa_code", "the challenge was used before", call=call)
        secret = box.open(key.sealed_secret, context=_context(who))
        step = factor.match(secret, checked.code, now)
        yield from self._record(key, step, call)

    def _check_shape(self, answer: object) -> SecurityAnswer | None:
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

    def _mac(self, owner: str, digest: str, nonce: str, expires_us: int) -> str:
        return self.secret_hasher.digest(
            f"security-challenge\x00{owner}\x00{digest}\x00{nonce}\x00{expires_us}"
        )

    def _challenge(self, key: SecurityKey, call: str, digest: str, now: datetime) -> NoReturn:
        expires_at = now + self.policy.security_challenge_ttl
        expires_us = (expires_at - _EPOCH) // timedelta(microseconds=1)
        nonce = new_token()
        mac = self._mac(key.owner, digest, nonce, expires_us)
        self.logger.info("security_key_challenged", owner=key.owner, call=call)
        raise SecurityKeyRequired(
            challenge=f"{nonce}.{expires_us}.{mac}",
            expires_at=expires_at,
            call=call,
            security_keys=((key.kind, key.name),),
        )

    def _open(self, challenge: str, owner: str, call: str, digest: str) -> tuple[str, datetime]:
        """The challenge's nonce and expiry, if this server issued it for this very call."""
        nonce, _, rest = challenge.partition(".")
        expires_text, _, mac = rest.partition(".")
        # An issued challenge is ASCII (and hmac.compare_digest refuses to compare other text).
        if nonce and rest.isascii() and expires_text.isdigit():
            expires_us = int(expires_text)
            if hmac.compare_digest(self._mac(owner, digest, nonce, expires_us), mac):
                return nonce, _EPOCH + timedelta(microseconds=expires_us)
        raise SecurityKeyRefused(
            "tfa_code_not_matched", "the challenge was not issued for this call", call=call
        )

    def _record(self, key: SecurityKey, step: int | None, call: str) -> Op[None]:
        """Count a wrong code, or accept a right one once: a compare-and-swap on the key."""
        for _ in range(_ATTEMPTS):
            if step is not None and step <= key.last_step:
                self.logger.info("security_key_rejected", owner=key.owner, reason="used_tfa_code")
                raise SecurityKeyRefused("used_tfa_code", "this code was used before", call=call)
            if step is None:
                saved = attrs.evolve(key, failures=key.failures + 1, version=key.version + 1)
            else:
                saved = attrs.evolve(key, last_step=step, failures=0, version=key.version + 1)
            try:
                yield STORE.save_security_key(saved)
            except ConcurrentUpdate:
                current: SecurityKey | None = yield STORE.get_security_key(key.owner)
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
                raise SecurityKeyRefused(
                    "tfa_code_not_matched", "the code is not the authenticator's", call=call
                )
            self.logger.info("security_key_accepted", owner=key.owner, call=call)
            return
        raise ConcurrentUpdate(0, key.version, action="security_key")
