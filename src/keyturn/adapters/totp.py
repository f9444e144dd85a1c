"""TOTP codes (RFC 6238) from a person's authenticator app, for security keys (extra ``totp``).

The :class:`~keyturn.ports.SecondFactor` adapter keyturn ships, on ``pyotp``. Secrets come from
:mod:`secrets` (160 bits, base32, as authenticator apps expect). A candidate is compared in
constant time against the codes of the current step and ``valid_window`` steps either side
(clock drift), every one of them checked, so the time taken does not say which matched. This
module never logs and keeps no state: the caller stores the secret (sealed) and refuses codes of a
step already used.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from typing import TYPE_CHECKING

import attrs

from keyturn.adapters.codes import is_ascii_code
from keyturn.core.errors import InvalidInput

try:
    import pyotp
except ImportError as e:  # pragma: no cover (exercised by the optional-dependency test)
    msg = "TOTP security keys need pyotp: pip install 'keyturn[totp]'"
    raise ImportError(msg) from e

if TYPE_CHECKING:
    from datetime import datetime

#: Bytes of a new TOTP secret (RFC 4226 recommends 160 bits).
SECRET_BYTES = 20


def _check_digits(_: object, __: object, value: object) -> None:
    if isinstance(value, bool) or value not in {6, 8}:
        raise InvalidInput("digits", "TOTP codes are 6 or 8 digits")


def _check_interval(_: object, __: object, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 15 <= value <= 120:  # noqa: PLR2004
        raise InvalidInput("interval", "must be 15 to 120 seconds")


def _check_window(_: object, __: object, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2:  # noqa: PLR2004
        raise InvalidInput("valid_window", "must be 0, 1 or 2 steps")


@attrs.frozen
class TotpVerifier:
    """Checks TOTP codes: ``digits`` digits, a new one every ``interval`` seconds.

    ``valid_window`` steps before and after the current one are accepted too (1 by default: a
    code is good for about 90 s around its 30 s step, which covers an app's clock drift).
    """

    digits: int = attrs.field(default=6, validator=_check_digits)
    interval: int = attrs.field(default=30, validator=_check_interval)
    valid_window: int = attrs.field(default=1, validator=_check_window)
    kind: str = "tfa"

    def _totp(self, secret: str) -> pyotp.TOTP:
        return pyotp.TOTP(secret, digits=self.digits, interval=self.interval)

    def new_secret(self) -> str:
        """A fresh 160-bit secret in base32, without padding."""
        return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode().rstrip("=")

    def provisioning_uri(self, secret: str, *, account: str, issuer: str) -> str:
        """The ``otpauth://totp/...`` URI for an authenticator app (or a QR code of it)."""
        return self._totp(secret).provisioning_uri(name=account, issuer_name=issuer)

    def match(self, secret: str, candidate: str, now: datetime) -> int | None:
        """The time step whose code ``candidate`` is, within the window around ``now``."""
        if not self.is_well_formed(candidate):
            return None
        totp = self._totp(secret)
        current = totp.timecode(now)
        matched = None
        for offset in range(-self.valid_window, self.valid_window + 1):
            step = current + offset
            if step >= 0 and hmac.compare_digest(totp.generate_otp(step), candidate):
                matched = step
        return matched

    def is_well_formed(self, candidate: str) -> bool:
        """Exactly ``digits`` ASCII digits."""
        return is_ascii_code(candidate, self.digits)

    def code_at(self, secret: str, when: datetime) -> str:
        """The code an authenticator app shows at ``when`` (for tests and client examples)."""
        return self._totp(secret).at(when)
