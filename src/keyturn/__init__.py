"""keyturn: the lifecycle of trading API keys as a state machine.

Create a key, show its secret once, have the person acknowledge it, activate it with a code sent
to them, disable, enable, edit, reset and remove it. Start with :class:`KeyService`; the states
and actions are in :mod:`keyturn.core.lifecycle`, the ports in :mod:`keyturn.ports`, ready
adapters in :mod:`keyturn.adapters`, and fakes for your tests in :mod:`keyturn.testing`.
"""

from keyturn.core.errors import (
    ActionNotAllowed,
    ActivationLocked,
    AuthenticationFailed,
    ChallengeInvalid,
    CodeAttemptsExhausted,
    CodeError,
    CodeExpired,
    CodeMismatch,
    ConcurrentUpdate,
    ConfirmationRequired,
    InvalidInput,
    KeyNotFound,
    KeyturnError,
    QuotaExceeded,
    ResendTooEarly,
    SecurityKeyLocked,
    SecurityKeyRefused,
    SecurityKeyRequired,
    SendLimitReached,
    StoreError,
)
from keyturn.core.lifecycle import Action, State
from keyturn.core.policy import Policy
from keyturn.core.records import (
    ApiKey,
    Confirmation,
    HistoryEntry,
    IssuedSecret,
    Notification,
    NotificationKind,
    Principal,
    SecurityAnswer,
    SecurityKey,
    SecurityKeyEnrollment,
)
from keyturn.core.scope import Scope
from keyturn.crypto.hashing import SecretHasher
from keyturn.crypto.sealing import CodeSeal
from keyturn.service import AsyncKeyService, KeyService, OutboxRelay, RelayReport

__all__ = [
    "Action",
    "ActionNotAllowed",
    "ActivationLocked",
    "ApiKey",
    "AsyncKeyService",
    "AuthenticationFailed",
    "ChallengeInvalid",
    "CodeAttemptsExhausted",
    "CodeError",
    "CodeExpired",
    "CodeMismatch",
    "CodeSeal",
    "ConcurrentUpdate",
    "Confirmation",
    "ConfirmationRequired",
    "HistoryEntry",
    "InvalidInput",
    "IssuedSecret",
    "KeyNotFound",
    "KeyService",
    "KeyturnError",
    "Notification",
    "NotificationKind",
    "OutboxRelay",
    "Policy",
    "Principal",
    "QuotaExceeded",
    "RelayReport",
    "ResendTooEarly",
    "Scope",
    "SecretHasher",
    "SecurityAnswer",
    "SecurityKey",
    "SecurityKeyEnrollment",
    "SecurityKeyLocked",
    "SecurityKeyRefused",
    "SecurityKeyRequired",
    "SendLimitReached",
    "State",
    "StoreError",
]
