"""The ports that are the same for the sync and the async service: the clock, the TOTP factor.

Neither does I/O (a clock is read, a factor computes), so both services call them as they are.
:class:`IssuedCode` is what a code verifier answers; :data:`CLAIM_LEASE` is part of every store's
outbox promise.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final, Protocol

import attrs

#: How long a notification a relay has claimed stays away from other relays: if the claimer
#: dies before marking it, it is due again after this lease (so delivered at least once).
CLAIM_LEASE: Final = timedelta(seconds=60)


class Clock(Protocol):
    """Tells the time. The only way time enters keyturn."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


@attrs.frozen
class IssuedCode:
    """A code a verifier has issued.

    ``ref`` is stored and handed back to :meth:`CodeVerifier.check`. ``code`` is the code for
    keyturn to deliver through the notifier, or ``None`` when the verifier delivers it itself
    (an outside service that sends and checks codes).
    """

    ref: str = attrs.field(repr=False)
    code: str | None = attrs.field(repr=False)


class SecondFactor(Protocol):
    """Checks codes from a person's authenticator (TOTP) for security keys.

    Unlike a :class:`CodeVerifier` it issues no code: the person's app computes it from a secret
    shared once at enrollment. It must do no I/O (it is called inside the service's operations,
    sync and async alike); :class:`keyturn.adapters.totp.TotpVerifier` is the shipped adapter.
    """

    @property
    def kind(self) -> str:
        """Deribit's security-key type this factor is (``tfa`` for TOTP)."""
        ...

    def new_secret(self) -> str:
        """A fresh shared secret, from :mod:`secrets`."""
        ...

    def provisioning_uri(self, secret: str, *, account: str, issuer: str) -> str:
        """The ``otpauth://`` URI that enrolls ``secret`` in an authenticator app."""
        ...

    def match(self, secret: str, candidate: str, now: datetime) -> int | None:
        """The time step ``candidate`` is the code of, if it is valid at ``now``; else ``None``.

        Compares in constant time. Steps grow with time, so the caller can refuse a replay.
        """
        ...

    def is_well_formed(self, candidate: str) -> bool:
        """Whether ``candidate`` has the shape of a code at all."""
        ...
