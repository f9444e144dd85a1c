"""Files that hold keys: written whole, published atomically, readable by their owner only.

The server key (``<db>.key``) and the sealing ring (``<db>.seal``) are created by whichever
process starts first on a new database, and several may start at once. A file is therefore
written complete under a private temporary name (mode 0600) and then published: by a hard link
for a new file, which fails if the name exists, so exactly one writer wins and every other reads
the winner's file; by a rename for a replacement (ring rotation). No reader ever sees a partial
file. This module knows nothing of what the files contain, and never logs or shows their content.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from keyturn.core.errors import StoreError

if TYPE_CHECKING:
    from collections.abc import Iterator


@contextlib.contextmanager
def _written(path: Path, text: str, what: str) -> Iterator[Path]:
    """A complete, synced temporary copy of ``text`` beside ``path``; removed on exit."""
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        msg = f"cannot write the {what} {path}: {e.strerror}"
        raise StoreError(msg) from None
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w") as f:  # mkstemp creates it 0600
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        yield tmp
        _sync_folder(path)
    except OSError as e:
        msg = f"cannot write the {what} {path}: {e.strerror}"
        raise StoreError(msg) from None
    finally:
        tmp.unlink(missing_ok=True)


def _sync_folder(path: Path) -> None:
    """Make the new name durable (the folder's entry), where the platform allows it."""
    with contextlib.suppress(OSError):
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def create_once(path: Path, text: str, what: str) -> bool:
    """Publish ``text`` at ``path`` unless a file is there; whether this call created it.

    ``what`` names the file in an error (``"server key file"``). Losing the race is not an
    error: the caller reads the file the winner published.
    """
    with _written(path, text, what) as tmp:
        try:
            path.hardlink_to(tmp)
        except FileExistsError:
            return False
    return True


def replace(path: Path, text: str, what: str) -> None:
    """Publish ``text`` at ``path`` in one step, replacing any file there."""
    with _written(path, text, what) as tmp:
        tmp.replace(path)
