"""Confirming an action by code: the challenge flow the policy can switch on per action.

The first call of a confirmable action issues a challenge bound to the exact request and sends
its code; the repeated call with ``Confirmation(challenge_id, code)`` consumes it, in the same
store write as the action. The rules (binding, expiry, attempts, single use) are decided in
:mod:`keyturn.core.decisions`; this module only asks the ports, as operations that yield their calls
(:mod:`keyturn.effects`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

import attrs

from keyturn.core import decisions
from keyturn.core.errors import (
    ChallengeInvalid,
    CodeMismatch,
    ConfirmationRequired,
    InvalidInput,
)
from keyturn.core.records import Challenge, Confirmation, Notification
from keyturn.core.time_rules import new_code
from keyturn.crypto.hashing import new_id, new_token
from keyturn.effects import STORE, VERIFIER

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from datetime import datetime

    from keyturn.core.lifecycle import Action
    from keyturn.core.policy import Policy
    from keyturn.effects import Op
    from keyturn.outbox import CodeSeal


def check_code_shape(well_formed: Callable[[str], bool], code: object, action: Action) -> str:
    """``code`` if it has the shape of a code, else :class:`InvalidInput` (nothing counted)."""
    if not isinstance(code, str) or not well_formed(code):
        raise InvalidInput("code", "is not a well-formed verification code", action=action)
    return code


@attrs.define(kw_only=True)
class Confirmations:
    """Issues and checks confirmation challenges for a service."""

    well_formed: Callable[[str], bool]
    code_seal: CodeSeal
    policy: Policy
    logger: Any
    deliver: Callable[[Sequence[Notification]], Op[None]]

    def confirm(
        self,
        *,
        action: Action,
        owner: str,
        key_id: int | None,
        params: Mapping[str, str],
        confirmation: object,
        now: datetime,
    ) -> Op[Challenge | None]:
        """The consumed challenge, if the policy wants ``action`` confirmed; else ``None``."""
        if action not in self.policy.confirm:
            return None
        digest = decisions.request_digest(action, key_id, params)
        if confirmation is None:
            yield from self._challenge(action, owner, key_id, digest, now)
        if not isinstance(confirmation, Confirmation):
            raise InvalidInput("confirmation", "must be a Confirmation", action=action.value)
        if not isinstance(confirmation.challenge_id, str) or len(confirmation.challenge_id) > 64:  # noqa: PLR2004
            raise ChallengeInvalid("no such challenge", action=action.value, key_id=key_id)
        check_code_shape(self.well_formed, confirmation.code, action)
        challenge = decisions.check_challenge(
            (yield STORE.get_challenge(confirmation.challenge_id)),
            owner=owner,
            action=action,
            key_id=key_id,
            digest=digest,
            now=now,
            policy=self.policy,
        )
        matched = yield VERIFIER.check(
            subject=f"challenge:{challenge.id}",
            ref=challenge.code.ref,
            candidate=confirmation.code,
        )
        checked = decisions.challenge_checked(challenge, matched=matched)
        if not matched:
            yield STORE.save_challenge(checked)
            self.logger.info(
                "confirmation_rejected",
                key_id=key_id,
                owner=owner,
                action=action.value,
            )
            raise CodeMismatch(
                key_id=key_id,
                state=None,
                action=action.value,
                attempts_left=max(0, self.policy.max_attempts - checked.code.attempts),
            )
        return checked

    def _challenge(
        self, action: Action, owner: str, key_id: int | None, digest: str, now: datetime
    ) -> Op[NoReturn]:
        challenge_id = new_token()
        issued = yield VERIFIER.issue(subject=f"challenge:{challenge_id}", owner=owner)
        code = new_code(issued.ref, now, self.policy)
        challenge = Challenge(
            id=challenge_id,
            owner=owner,
            action=action,
            key_id=key_id,
            request_digest=digest,
            code=code,
        )
        notice = self.code_seal.seal(
            decisions.code_notice(
                notification_id=new_id(),
                owner=owner,
                key_id=key_id,
                key_name="",
                subject=f"Your code to confirm {action.value}",
                code=issued.code,
                sent_at=now,
                expires_at=code.expires_at,
            )
        )
        notes = [] if notice is None else [notice]
        yield STORE.add_challenge(challenge, notes)
        self.logger.info(
            "confirmation_requested",
            key_id=key_id,
            owner=owner,
            action=action.value,
            challenge_id=challenge_id,
        )
        yield from self.deliver(notes)
        raise ConfirmationRequired(
            challenge_id=challenge_id,
            expires_at=code.expires_at,
            action=action.value,
            key_id=key_id,
        )
