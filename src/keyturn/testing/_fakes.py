"""Test doubles that are not adapters of their own.

A verifier with chosen codes, and the wiring of a service from fakes. Nothing here is meant for
production.
"""

from __future__ import annotations

import hmac
import itertools
from typing import TYPE_CHECKING, Any

import attrs

from keyturn.adapters.clocks import ManualClock
from keyturn.adapters.codes import is_ascii_code
from keyturn.adapters.memory import InMemoryKeyStore
from keyturn.adapters.notifiers import RecordingNotifier
from keyturn.core.lifecycle import State
from keyturn.core.policy import Policy
from keyturn.crypto.hashing import SecretHasher, new_token
from keyturn.crypto.sealing import CodeSeal, SecretBox
from keyturn.ports import IssuedCode
from keyturn.service import KeyService
from keyturn.wiring import default_second_factor

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from keyturn.core.records import IssuedSecret
    from keyturn.ports import Clock, CodeVerifier, KeyStore, Notifier, SecondFactor


def _counting_codes() -> Iterator[str]:
    return (f"{n:06d}" for n in itertools.count(100001))


@attrs.define
class KnownCodeVerifier:
    """Issues the codes it was given (default ``100001``, ``100002``...), in order.

    ``issued`` maps each reference to ``(subject, code)``; checks compare in constant time.
    """

    codes: Iterator[str] = attrs.field(factory=_counting_codes, repr=False)
    length: int = 6
    issued: dict[str, tuple[str, str]] = attrs.field(factory=dict, repr=False)

    @classmethod
    def of(cls, codes: Iterable[str], length: int = 6) -> KnownCodeVerifier:
        """A verifier that issues exactly ``codes``."""
        return cls(iter(codes), length)

    def issue(self, *, subject: str, owner: str) -> IssuedCode:  # noqa: ARG002
        """The next known code."""
        code = next(self.codes)
        ref = new_token(8)
        self.issued[ref] = (subject, code)
        return IssuedCode(ref=ref, code=code)

    def check(self, *, subject: str, ref: str, candidate: str) -> bool:
        """Whether ``candidate`` is the code issued as ``ref`` for ``subject``."""
        expected_subject, code = self.issued.get(ref, ("", ""))
        return hmac.compare_digest(code.encode(), candidate.encode()) and (
            expected_subject == subject
        )

    def is_well_formed(self, candidate: str) -> bool:
        """Exactly ``length`` ASCII digits."""
        return is_ascii_code(candidate, self.length)


def make_service(
    *,
    store: KeyStore | None = None,
    verifier: CodeVerifier | None = None,
    notifier: Notifier | None = None,
    clock: Clock | None = None,
    policy: Policy | None = None,
    logger: Any = None,  # noqa: ANN401
    secret_box: SecretBox | None = None,
    sealed: bool = True,
    second_factor: SecondFactor | None = None,
) -> KeyService:
    """A service over fakes: memory store, known codes, recording notifier, manual clock.

    Secrets are kept sealed under a fresh ring (``secret_box``, else a generated one) unless
    ``sealed`` is false (hashes only). Security keys use ``second_factor``, else TOTP when
    pyotp is installed (TOTP is pure computation: the manual clock drives it).
    """
    extra = {"logger": logger} if logger is not None else {}
    if secret_box is None and sealed:
        secret_box = SecretBox.generate()
    return KeyService(
        second_factor=second_factor if second_factor is not None else default_second_factor(),
        secret_box=secret_box,
        store=store if store is not None else InMemoryKeyStore(),
        verifier=verifier if verifier is not None else KnownCodeVerifier(),
        notifier=notifier if notifier is not None else RecordingNotifier(),
        clock=clock if clock is not None else ManualClock(),
        secret_hasher=SecretHasher.generate(),
        code_seal=CodeSeal.generate(),
        policy=policy if policy is not None else Policy(),
        **extra,
    )


_PATH = (
    State.CREATED,
    State.SECRET_ACKNOWLEDGED,
    State.PENDING_2FA,
    State.ACTIVE,
    State.DISABLED,
)


def key_in_state(
    service: KeyService,
    state: State,
    *,
    owner: str = "alice",
    name: str = "k1",
    max_scope: str = "account:read trade:read_write",
) -> IssuedSecret:
    """Create a key and walk it to ``state`` the way a person would; return the creation answer.

    Codes are read from the service's notifier, which must be a :class:`RecordingNotifier`.
    ``IssuedSecret.key`` is the key as created; read the current one with ``service.get``.
    """
    notifier = service.notifier
    if not isinstance(notifier, RecordingNotifier):
        msg = "key_in_state needs a service whose notifier is a RecordingNotifier"
        raise TypeError(msg)
    issued = service.create(owner=owner, name=name, max_scope=max_scope)
    key_id = issued.key.id
    steps = {
        State.SECRET_ACKNOWLEDGED: lambda: service.acknowledge_secret(key_id, owner=owner),
        State.PENDING_2FA: lambda: service.request_activation(key_id, owner=owner),
        State.ACTIVE: lambda: service.verify_code(key_id, notifier.last_code(key_id), owner=owner),
        State.DISABLED: lambda: service.disable(key_id, owner=owner),
    }
    if state is State.REMOVED:
        service.remove(key_id, owner=owner)
        return issued
    for s in _PATH[1 : _PATH.index(state) + 1]:
        steps[s]()
    return issued
