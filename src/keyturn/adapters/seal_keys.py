"""Where the sealing key ring lives: ``KEYTURN_SEAL_KEYS``, or a file beside the SQLite file.

* ``KEYTURN_SEAL_KEYS="k2:<64 hex>,k1:<64 hex>"``: the ring, newest first; the first key seals.
* Otherwise, for a SQLite database, ``<db>.seal`` (mode 0600): JSON ``{"current": id, "keys":
  {id: hex}}``, created with one fresh key on first use and rewritten atomically on rotation.
  Processes starting together on a new database all end with the same ring: one publishes the
  file whole (:mod:`keyturn.adapters.key_files`) and the others read it.
* ``KEYTURN_SECRETS=hashed`` keeps no sealed secrets at all (a bearer-only deployment: secrets
  are only hashed, and signatures by secret are refused); so does a database that is not a local
  file when no ring is configured.

Like the server key, the ring must be kept, and kept out of database backups. This module reads
and writes only the ring; :meth:`keyturn.service.KeyService.reseal_secrets` re-seals records.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Final

from keyturn.adapters import key_files
from keyturn.adapters.conninfo import is_postgres
from keyturn.core.errors import InvalidInput, StoreError
from keyturn.crypto.sealing import KEY_BYTES, SecretBox

ENV_KEYS: Final = "KEYTURN_SEAL_KEYS"
ENV_MODE: Final = "KEYTURN_SECRETS"


def ring_from_env(text: str) -> SecretBox:
    """The ring ``KEYTURN_SEAL_KEYS`` describes (first key seals)."""
    keys: dict[str, bytes] = {}
    for item in text.split(","):
        key_id, sep, hex_key = item.strip().partition(":")
        try:
            key = bytes.fromhex(hex_key)
        except ValueError:
            key = b""
        if not sep or len(key) != KEY_BYTES or key_id in keys:
            raise InvalidInput(ENV_KEYS, "must be id:<64 hex digits>, comma-separated, ids unique")
        keys[key_id] = key
    return SecretBox(keys, next(iter(keys)))


def ring_path(database: str) -> Path | None:
    """The ring file beside a SQLite database, or ``None`` for a database that is not a file."""
    if database == ":memory:" or is_postgres(database):
        return None
    return Path(database + ".seal")


def load_ring(path: Path) -> SecretBox:
    """The ring stored in ``path``."""
    try:
        doc = json.loads(path.read_text())
        keys = {str(k): bytes.fromhex(v) for k, v in doc["keys"].items()}
        return SecretBox(keys, str(doc["current"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, InvalidInput):
        msg = f"the sealing key ring {path} is unreadable or damaged"
        raise StoreError(msg) from None


def _ring_text(box: SecretBox) -> str:
    doc = {"current": box.current, "keys": {k: v.hex() for k, v in box.keys.items()}}
    return json.dumps(doc, indent=1)


def save_ring(path: Path, box: SecretBox) -> None:
    """Write ``box`` to ``path`` atomically, replacing the ring there; owner-readable only."""
    key_files.replace(path, _ring_text(box), "sealing key ring")


def _new_key_id(box: SecretBox | None) -> str:
    taken = set() if box is None else set(box.keys)
    n = len(taken) + 1
    while f"k{n}" in taken:
        n += 1
    return f"k{n}"


def secret_box(database: str) -> SecretBox | None:
    """The ring for ``database`` from the environment or its file; ``None`` for hashes only."""
    mode = os.environ.get(ENV_MODE, "sealed")
    if mode not in ("sealed", "hashed"):
        raise InvalidInput(ENV_MODE, "must be sealed or hashed")
    if mode == "hashed":
        return None
    if text := os.environ.get(ENV_KEYS):
        return ring_from_env(text)
    path = ring_path(database)
    if path is None:
        return None
    if not path.exists():
        first = SecretBox({"k1": secrets.token_bytes(KEY_BYTES)}, "k1")
        key_files.create_once(path, _ring_text(first), "sealing key ring")
    return load_ring(path)


def add_key(path: Path) -> SecretBox:
    """Add a fresh key to the ring file and make it the one that seals; return the new ring."""
    box = load_ring(path)
    key_id = _new_key_id(box)
    grown = SecretBox({**box.keys, key_id: secrets.token_bytes(KEY_BYTES)}, key_id)
    save_ring(path, grown)
    return grown


def prune(path: Path, in_use: set[str]) -> list[str]:
    """Drop from the ring file every key neither current nor in ``in_use``; return their ids."""
    box = load_ring(path)
    keep = {k: v for k, v in box.keys.items() if k == box.current or k in in_use}
    dropped = sorted(set(box.keys) - set(keep))
    if dropped:
        save_ring(path, SecretBox(keep, box.current))
    return dropped
