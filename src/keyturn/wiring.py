"""The one place where adapters are chosen and wired into a service.

One piece: the composition root; split, there would be two places that choose adapters.

Everything else takes its ports as arguments. Configuration comes from arguments or the
environment: ``KEYTURN_DB`` (a SQLite path, or a PostgreSQL conninfo, as a ``postgresql://`` URL
or libpq keywords, when the ``postgres`` extra is installed) and ``KEYTURN_SERVER_KEY`` (64 hex
digits: the server-side key under which secrets and codes are hashed). Without
``KEYTURN_SERVER_KEY`` a random key is created once in a file beside a SQLite database
(``<db>.key``, mode 0600). Lose that key and no existing secret can be checked again: keep it,
and keep it out of database backups. Every key keyturn uses is derived from it for one purpose
(:func:`derive`): code hashes, secret hashes, tokens, and the seal of codes in the outbox.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Final

import attrs

from keyturn.adapters import key_files, seal_keys
from keyturn.adapters.clocks import SystemClock
from keyturn.adapters.codes import HmacCodeVerifier
from keyturn.adapters.conninfo import is_postgres
from keyturn.core.errors import InvalidInput, StoreError
from keyturn.core.policy import Policy
from keyturn.crypto.hashing import SecretHasher
from keyturn.crypto.sealing import CodeSeal
from keyturn.service import KeyService

if TYPE_CHECKING:
    from keyturn.api.asgi import Api
    from keyturn.crypto.sealing import SecretBox
    from keyturn.ports import (
        AsyncKeyStore,
        AsyncNotifier,
        Clock,
        KeyStore,
        Notifier,
        SecondFactor,
    )
    from keyturn.service import AsyncKeyService

DEFAULT_DB: Final = "keyturn.db"
KEY_BYTES: Final = 32


def database(db: str | None = None) -> str:
    """Where the keys live: the argument, else ``KEYTURN_DB``, else ``keyturn.db`` here."""
    return db or os.environ.get("KEYTURN_DB") or DEFAULT_DB


def open_store(db: str | None = None) -> KeyStore:
    """Open the store ``db`` names: a PostgreSQL conninfo (URL or keywords), or a SQLite file."""
    target = database(db)
    if is_postgres(target):
        from keyturn.adapters.postgres import PostgresKeyStore  # noqa: PLC0415

        return PostgresKeyStore(target)
    from keyturn.adapters.sqlite import SQLiteKeyStore  # noqa: PLC0415

    return SQLiteKeyStore(target)


def secret_box(db: str | None = None) -> SecretBox | None:
    """The ring that seals secrets for ``db`` (pass it to :func:`build_service`), or ``None``.

    ``KEYTURN_SEAL_KEYS`` if set; else, for a SQLite file, ``<db>.seal`` (created with one key on
    first use); ``None`` (secrets only hashed) with ``KEYTURN_SECRETS=hashed`` or for a database
    that is not a file. See :mod:`keyturn.adapters.seal_keys`.
    """
    return seal_keys.secret_box(database(db))


def _hex_key(text: str) -> bytes:
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        return b""
    return key if len(key) == KEY_BYTES else b""


def server_key(db: str | None = None) -> bytes:
    """The server key: from ``KEYTURN_SERVER_KEY``, else the key file beside a SQLite file."""
    env = os.environ.get("KEYTURN_SERVER_KEY")
    if env is not None:
        if not (key := _hex_key(env)):
            raise InvalidInput("KEYTURN_SERVER_KEY", "must be 64 hexadecimal digits")
        return key
    return _key_file(database(db))


def _key_file(target: str) -> bytes:
    """The key in ``<target>.key``, created with fresh random bytes (mode 0600) if missing.

    Several processes may start on a new database at once: the file is published whole by one
    of them (:func:`keyturn.adapters.key_files.create_once`) and every other reads that one.
    """
    if target == ":memory:" or is_postgres(target):
        msg = "set KEYTURN_SERVER_KEY (64 hex digits) for a database that is not a local file"
        raise StoreError(msg)
    path = Path(target + ".key")
    if not path.exists():
        key_files.create_once(path, secrets.token_hex(KEY_BYTES) + "\n", "server key file")
    try:
        key = _hex_key(path.read_text())
    except OSError:
        key = b""
    if not key:
        msg = f"the server key file {path} is unreadable or damaged"
        raise StoreError(msg)
    return key


NOTIFIERS: Final = ("console", "smtp", "log")
#: What to set when no notifier is configured (for messages).
NOTIFIER_HINT: Final = (
    "set --notifier smtp (with KEYTURN_SMTP_HOST and KEYTURN_SMTP_SENDER) or KEYTURN_NOTIFIER, "
    "or pass --dev to show codes on this terminal"
)


def configured_notifier(kind: str | None = None) -> str | None:
    """The notifier ``kind`` names, else ``$KEYTURN_NOTIFIER``; ``None`` if neither is set."""
    return kind or os.environ.get("KEYTURN_NOTIFIER") or None


def notifier_from_env(kind: str | None = None, *, dev: bool = False) -> Notifier:
    """The notifier ``kind`` (else ``$KEYTURN_NOTIFIER``; else, with ``dev``, ``console``) names.

    ``smtp`` reads ``KEYTURN_SMTP_HOST`` (required), ``KEYTURN_SMTP_PORT`` (587),
    ``KEYTURN_SMTP_SENDER`` (required), ``KEYTURN_SMTP_SECURITY`` (starttls, tls or none),
    ``KEYTURN_SMTP_USERNAME`` and ``KEYTURN_SMTP_PASSWORD``. ``log`` logs that a notification
    went out, never its code. ``console`` prints to this terminal and shows codes: it reaches no
    owner, so it exists only in ``dev`` mode; without ``dev`` and without a notifier configured
    this raises :class:`~keyturn.core.errors.InvalidInput` saying what to set.
    """
    chosen = configured_notifier(kind) or ("console" if dev else None)
    if chosen is None:
        raise InvalidInput("notifier", f"none is configured: {NOTIFIER_HINT}")
    if chosen == "console":
        if not dev:
            raise InvalidInput(
                "notifier", f"console reaches no owner and is for --dev only: {NOTIFIER_HINT}"
            )
        from keyturn.adapters.console import ConsoleNotifier  # noqa: PLC0415

        return ConsoleNotifier(show_codes=True)
    if chosen == "log":
        from keyturn.adapters.notifiers import LoggingNotifier  # noqa: PLC0415

        return LoggingNotifier()
    if chosen != "smtp":
        raise InvalidInput("notifier", f"must be one of {', '.join(NOTIFIERS)}")
    from keyturn.adapters.smtp import SmtpNotifier  # noqa: PLC0415

    env = os.environ
    missing = [v for v in ("KEYTURN_SMTP_HOST", "KEYTURN_SMTP_SENDER") if not env.get(v)]
    if missing:
        raise InvalidInput("notifier", f"smtp needs {' and '.join(missing)}")
    port = env.get("KEYTURN_SMTP_PORT", "587")
    if not port.isdigit():
        raise InvalidInput("KEYTURN_SMTP_PORT", "must be a port number")
    return SmtpNotifier(
        host=env["KEYTURN_SMTP_HOST"],
        port=int(port),
        sender=env["KEYTURN_SMTP_SENDER"],
        security=env.get("KEYTURN_SMTP_SECURITY", "starttls"),
        username=env.get("KEYTURN_SMTP_USERNAME") or None,
        password=env.get("KEYTURN_SMTP_PASSWORD") or None,
    )


def derive(master: bytes, purpose: str) -> bytes:
    """A key for one purpose, derived from the server key (so one key serves all)."""
    return hmac.new(master, b"keyturn/" + purpose.encode(), hashlib.sha256).digest()


@attrs.frozen
class _Shared:
    """What every service over one server key shares, so services and relays interoperate."""

    verifier: HmacCodeVerifier
    clock: Clock
    secret_hasher: SecretHasher
    code_seal: CodeSeal
    policy: Policy


def _shared(
    master_key: bytes, clock: Clock | None, policy: Policy | None, code_length: int
) -> _Shared:
    return _Shared(
        verifier=HmacCodeVerifier(derive(master_key, "codes"), code_length),
        clock=clock if clock is not None else SystemClock(),
        secret_hasher=SecretHasher(derive(master_key, "secrets")),
        code_seal=CodeSeal.from_key(derive(master_key, "outbox-codes")),
        policy=policy if policy is not None else Policy(),
    )


def default_second_factor() -> SecondFactor | None:
    """A TOTP verifier for security keys if pyotp is installed (extra ``totp``), else ``None``."""
    try:
        from keyturn.adapters.totp import TotpVerifier  # noqa: PLC0415
    except ImportError:
        return None
    return TotpVerifier()


def build_service(
    *,
    store: KeyStore,
    notifier: Notifier,
    master_key: bytes,
    clock: Clock | None = None,
    policy: Policy | None = None,
    code_length: int = 6,
    secret_box: SecretBox | None = None,
) -> KeyService:
    """A service over ``store`` and ``notifier``, hashing under keys derived from ``master_key``.

    With ``secret_box`` the service also keeps every new secret sealed, so that the key can sign
    requests with it (see :mod:`keyturn.adapters.seal_keys` for where the ring comes from).
    """
    shared = _shared(master_key, clock, policy, code_length)
    return KeyService(
        store=store,
        verifier=shared.verifier,
        notifier=notifier,
        clock=shared.clock,
        secret_hasher=shared.secret_hasher,
        code_seal=shared.code_seal,
        policy=shared.policy,
        secret_box=secret_box,
        second_factor=default_second_factor(),
    )


def build_async_service(
    *,
    store: AsyncKeyStore,
    notifier: AsyncNotifier,
    master_key: bytes,
    clock: Clock | None = None,
    policy: Policy | None = None,
    code_length: int = 6,
    secret_box: SecretBox | None = None,
) -> AsyncKeyService:
    """:func:`build_service` for async ports: the same keys, so both services share a store."""
    from keyturn.adapters.to_async import AsyncVerifierAdapter  # noqa: PLC0415
    from keyturn.service import AsyncKeyService  # noqa: PLC0415

    shared = _shared(master_key, clock, policy, code_length)
    return AsyncKeyService(
        store=store,
        verifier=AsyncVerifierAdapter(shared.verifier),
        notifier=notifier,
        clock=shared.clock,
        secret_hasher=shared.secret_hasher,
        code_seal=shared.code_seal,
        policy=shared.policy,
        secret_box=secret_box,
        second_factor=default_second_factor(),
    )


async def open_async_store(db: str | None = None) -> AsyncKeyStore:
    """The store ``db`` names as an async port: PostgreSQL natively, SQLite through a wrapper.

    SQLite's writes run on one writer thread (batched into one commit when they queue up) and
    its reads, short and local, on the event loop.
    """
    target = database(db)
    if is_postgres(target):
        from keyturn.adapters.postgres import AsyncPostgresKeyStore  # noqa: PLC0415

        return await AsyncPostgresKeyStore.open(target)
    from keyturn.adapters.sqlite import SQLiteKeyStore  # noqa: PLC0415
    from keyturn.adapters.to_async import AsyncStore  # noqa: PLC0415

    return AsyncStore(SQLiteKeyStore(target), inline_reads=True)


#: How the API runs the lifecycle: its callers are authenticated by token, so ``enable`` is
#: direct, and an edit keeps a key enabled unless ``enabled`` says otherwise (Deribit's rules).
API_POLICY: Final = Policy(direct_enable=True, edit_deactivates=False)


def build_api(service: AsyncKeyService, master_key: bytes, *, testnet: bool = False) -> Api:
    """The ASGI application serving the Deribit-compatible API over ``service``."""
    from keyturn.api.asgi import Api  # noqa: PLC0415
    from keyturn.api.methods import METHODS  # noqa: PLC0415
    from keyturn.api.rpc import Rpc  # noqa: PLC0415
    from keyturn.api.tokens import Tokens  # noqa: PLC0415

    tokens = Tokens(key=derive(master_key, "tokens"), store=service.store)
    rpc = Rpc(service=service, tokens=tokens, testnet=testnet)
    rpc.serve(METHODS)
    return Api(rpc)
