"""Confirming a request by code, as the policy asks: issue the challenge, or consume it.

The first call of an action listed in ``Policy.confirm`` stores a challenge bound to the exact
request, queues its code and raises :class:`~keyturn.core.errors.ConfirmationRequired`; the
repeated call with a :class:`~keyturn.core.records.Confirmation` has its code checked and gets
the consumed challenge back, to be written with the action. The rules are
:mod:`keyturn.core.confirmations`'; this part only asks the ports. Async source of a generated
twin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from keyturn.core import confirmations
from keyturn.core.changes import code_notice
from keyturn.core.errors import (
    ChallengeInvalid,
    CodeMismatch,
    ConcurrentUpdate,
    ConfirmationRequired,
    InvalidInput,
)
from keyturn.core.records import Challenge, Confirmation
from keyturn.core.time_rules import new_code
from keyturn.crypto.hashing import new_id, new_token
from keyturn.service._async.base import WRITE_ATTEMPTS, AsyncServiceBase

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime
    from typing import NoReturn

    from keyturn.core.lifecycle import Action

#: The longest challenge id accepted before any lookup (ours are 22 characters).
MAX_CHALLENGE_ID: Final = 64


class AsyncConfirming(AsyncServiceBase):
    """The confirmation step of a request (part of :class:`~keyturn.service.AsyncKeyService`)."""

    __slots__ = ()

    def _code_shape(self, code: object, action: Action) -> str:
        """``code`` if it has the shape of a code, else :class:`InvalidInput` (nothing counted)."""
        if not isinstance(code, str) or not self.verifier.is_well_formed(code):
            raise InvalidInput("code", "is not a well-formed verification code", action=action)
        return code

    async def _confirm(
        self,
        *,
        action: Action,
        owner: str,
        key_id: int | None,
        params: Mapping[str, str],
        confirmation: object,
        now: datetime,
    ) -> Challenge | None:
        """The consumed challenge, if the policy wants ``action`` confirmed; else ``None``."""
        if action not in self.policy.confirm:
            return None
        digest = confirmations.request_digest(action, key_id, params)
        if confirmation is None:
            await self._confirmation_challenge(action, owner, key_id, digest, now)
        if not isinstance(confirmation, Confirmation):
            raise InvalidInput("confirmation", "must be a Confirmation", action=action.value)
        challenge_id = confirmation.challenge_id
        if not isinstance(challenge_id, str) or len(challenge_id) > MAX_CHALLENGE_ID:
            raise ChallengeInvalid("no such challenge", action=action.value, key_id=key_id)
        code = self._code_shape(confirmation.code, action)
        challenge = confirmations.check_challenge(
            await self.store.get_challenge(challenge_id),
            owner=owner,
            action=action,
            key_id=key_id,
            digest=digest,
            now=now,
            policy=self.policy,
        )
        matched = await self.verifier.check(
            subject=f"challenge:{challenge.id}", ref=challenge.code.ref, candidate=code
        )
        checked = confirmations.challenge_checked(challenge, matched=matched)
        if matched:
            return checked
        await self.store.save_challenge(checked)
        self.logger.info("confirmation_rejected", key_id=key_id, owner=owner, action=action.value)
        raise CodeMismatch(
            key_id=key_id,
            state=None,
            action=action.value,
            attempts_left=max(0, self.policy.max_attempts - checked.code.attempts),
        )

    async def _confirmation_challenge(
        self, action: Action, owner: str, key_id: int | None, digest: str, now: datetime
    ) -> NoReturn:
        """Store a challenge for this request, send its code, and ask for it.

        The same request asked again before "resend" opens gets its live challenge back (no new
        code); the core refuses a new code before the wait or past the send cap.
        """
        since = now - max(self.policy.send_window, self.policy.resend_after)
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            recent = await self.store.recent_challenges(owner, since=since)
            live = confirmations.live_challenge(
                recent, action=action, key_id=key_id, digest=digest, now=now, policy=self.policy
            )
            if live is not None:
                self._reopened(live, action, owner, key_id)
            sent = len(confirmations.sent_for(recent, action=action, key_id=key_id))
            try:  # sent only if no other request sent one for them since ``recent`` was read
                await self._send_challenge(action, owner, key_id, digest, now, seen=(since, sent))
            except ConcurrentUpdate:
                if attempt == WRITE_ATTEMPTS:
                    raise
        raise AssertionError  # pragma: no cover (the loop returns or raises)

    def _reopened(
        self, live: Challenge, action: Action, owner: str, key_id: int | None
    ) -> NoReturn:
        """Ask for the code of the live challenge again (no new code goes out)."""
        self.logger.info(
            "confirmation_reopened",
            key_id=key_id,
            owner=owner,
            action=action.value,
            challenge_id=live.id,
        )
        raise ConfirmationRequired(
            challenge_id=live.id,
            expires_at=live.code.expires_at,
            action=action.value,
            key_id=key_id,
            resend_at=live.code.resend_at,
        )

    async def _send_challenge(
        self,
        action: Action,
        owner: str,
        key_id: int | None,
        digest: str,
        now: datetime,
        *,
        seen: tuple[datetime, int],
    ) -> NoReturn:
        """Store a new challenge and its code (if ``seen`` still holds), send it, ask for it."""
        challenge_id = new_token()
        issued = await self.verifier.issue(subject=f"challenge:{challenge_id}", owner=owner)
        code = new_code(issued.ref, now, self.policy)
        challenge = Challenge(
            id=challenge_id,
            owner=owner,
            action=action,
            key_id=key_id,
            request_digest=digest,
            code=code,
        )
        notice = code_notice(
            notification_id=new_id(),
            owner=owner,
            key_id=key_id,
            key_name="",
            subject=f"Your code to confirm {action.value}",
            code=issued.code,
            sent_at=now,
            expires_at=code.expires_at,
        )
        notes = [] if notice is None else [self.code_seal.seal_code(notice)]
        await self.store.add_challenge(challenge, notes, claim=self.deliver_inline, seen=seen)
        self.logger.info(
            "confirmation_requested",
            key_id=key_id,
            owner=owner,
            action=action.value,
            challenge_id=challenge_id,
        )
        await self._deliver(notes)
        raise ConfirmationRequired(
            challenge_id=challenge_id,
            expires_at=code.expires_at,
            action=action.value,
            key_id=key_id,
            resend_at=code.resend_at,
        )
