"""What a caller asks of a key (commands), and what the core asks the shell for (needs).

A command names its :class:`~keyturn.core.lifecycle.Action` and carries what the request says,
already validated. :func:`keyturn.core.decide.decide` answers a command with a
:class:`Decision`, or first with a need (:class:`SendCode`, :class:`CheckCode`) that the shell
answers through its code verifier and hands back. Values only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import attrs

from keyturn.core.lifecycle import Action

if TYPE_CHECKING:
    from keyturn.core.changes import Edit as EditFields
    from keyturn.core.errors import KeyturnError
    from keyturn.core.records import Change


@attrs.frozen
class Acknowledge:
    """The person saved the secret (the "I have saved the API secret" box)."""

    action: ClassVar[Action] = Action.ACKNOWLEDGE_SECRET
    actor: str


@attrs.frozen
class RequestActivation:
    """ACTIVATE: open the code dialog, with the live code or a new one."""

    action: ClassVar[Action] = Action.REQUEST_ACTIVATION
    actor: str


@attrs.frozen
class Resend:
    """Resend: a new code replaces the last one."""

    action: ClassVar[Action] = Action.RESEND_CODE
    actor: str


@attrs.frozen
class Verify:
    """The person entered ``candidate`` (well-formed: the shell checked its shape)."""

    action: ClassVar[Action] = Action.VERIFY_CODE
    actor: str
    candidate: str = attrs.field(repr=False)


@attrs.frozen
class Cancel:
    """The code dialog was closed (ACTIVATE LATER)."""

    action: ClassVar[Action] = Action.CANCEL_ACTIVATION
    actor: str


@attrs.frozen
class Disable:
    """Deactivate, at once."""

    action: ClassVar[Action] = Action.DISABLE
    actor: str


@attrs.frozen
class Enable:
    """Activate: directly under the ``direct_enable`` policy, else through a code."""

    action: ClassVar[Action] = Action.ENABLE
    actor: str


@attrs.frozen
class Edit:
    """Change fields; then, with ``enabled``, enable (directly) or disable in the same write."""

    action: ClassVar[Action] = Action.EDIT
    actor: str
    fields: EditFields
    enabled: bool | None = None


@attrs.frozen
class NewSecret:
    """A new secret's stored forms: its keyed digest, fingerprint and sealed copy (or none)."""

    digest: str = attrs.field(repr=False)
    fingerprint: str
    sealed: str | None = attrs.field(repr=False)


@attrs.frozen
class ResetSecret:
    """A new secret replaces the old one, which stops working at once."""

    action: ClassVar[Action] = Action.RESET_SECRET
    actor: str
    secret: NewSecret


@attrs.frozen
class Remove:
    """Remove for good; the record and its history stay."""

    action: ClassVar[Action] = Action.REMOVE
    actor: str


@attrs.frozen
class Unlock:
    """An operator clears the wrong-code lock."""

    action: ClassVar[Action] = Action.UNLOCK_ACTIVATION
    actor: str


Command = (
    Acknowledge
    | RequestActivation
    | Resend
    | Verify
    | Cancel
    | Disable
    | Enable
    | Edit
    | ResetSecret
    | Remove
    | Unlock
)


@attrs.frozen
class SendCode:
    """The core needs a new code for ``subject``: ask the verifier to issue one to ``owner``."""

    subject: str
    owner: str


@attrs.frozen
class CheckCode:
    """The core needs to know whether ``candidate`` is the code issued as ``ref``."""

    subject: str
    ref: str = attrs.field(repr=False)
    candidate: str = attrs.field(repr=False)


Need = SendCode | CheckCode


@attrs.frozen
class Decision:
    """The core's answer: the change to write (``None``: nothing changes).

    ``refusal``, when set, is raised once the change is written: a wrong code is counted, then
    refused.
    """

    change: Change | None
    refusal: KeyturnError | None = None
