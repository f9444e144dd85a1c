"""Each command's own options, with help that says what is accepted.

The rules are written from the core's own constants (the scope's resources, the features), so
help cannot drift from what is accepted. Declarations only: :mod:`keyturn.cli.parser` puts
them together, and nothing here runs a command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keyturn.core.scope import RESOURCES
from keyturn.core.validation import FEATURES

from . import drawing

if TYPE_CHECKING:
    import argparse


def key_id(p: argparse.ArgumentParser) -> None:
    """A key's id, and the owner to act as."""
    p.add_argument("id", type=int, help="the key's id (keyturn list shows them)")
    p.add_argument("--owner", help="act as this owner (default: the key's own)")


def create(p: argparse.ArgumentParser) -> None:
    """``create``: the owner, the name, the scope, the whitelist, the features, a public key."""
    p.add_argument(
        "--owner",
        required=True,
        help="the account that owns the key (1-128 printable characters); it is told of every "
        "change and receives the codes, so with --notifier smtp it is an email address",
    )
    p.add_argument(
        "--name",
        required=True,
        help="the key's name: 1-16 ASCII letters, digits or underscores (Deribit's rule)",
    )
    _scope(p, required=True)
    _whitelist_and_features(p)
    p.add_argument(
        "--public-key-file",
        metavar="FILE",
        help="a PEM public key (Ed25519, or RSA of 2048 bits or more): the key signs its "
        "requests with the private key and has no secret",
    )
    p.add_argument(
        "--init",
        action="store_true",
        help="create the store at --db if there is none (as keyturn init)",
    )


def _scope(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument(
        "--scope",
        required=required,
        help="the most the key may do: RESOURCE:LEVEL pairs separated by spaces, as "
        f'"account:read trade:read_write"; resources: {", ".join(RESOURCES)}; levels: none, '
        "read, read_write (a resource not named is none)",
    )


def _whitelist_and_features(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ip",
        action="append",
        metavar="ADDRESS",
        help="an IP address or CIDR range (10.0.0.0/8, host bits zero) the key may be used "
        "from; repeat for more; none: any address",
    )
    p.add_argument(
        "--feature",
        action="append",
        help=f"an enabled feature, repeat for more: {', '.join(sorted(FEATURES))}",
    )


def verify(p: argparse.ArgumentParser) -> None:
    """``verify``: a key and its code."""
    key_id(p)
    p.add_argument("code", help="the code sent to the owner (6 digits)")


def edit(p: argparse.ArgumentParser) -> None:
    """``edit``: a key and what to change."""
    key_id(p)
    p.add_argument("--name", help="a new name: 1-16 ASCII letters, digits or underscores")
    _scope(p, required=False)
    _whitelist_and_features(p)
    p.add_argument("--clear-ip", action="store_true", help="allow any address")
    p.add_argument("--clear-features", action="store_true", help="enable no feature")


def remove(p: argparse.ArgumentParser) -> None:
    """``remove``: a key, and ``--yes``."""
    key_id(p)
    _yes(p, "remove without asking (needed when there is no terminal to ask on)")


def _yes(p: argparse.ArgumentParser, text: str) -> None:
    p.add_argument("-y", "--yes", action="store_true", help=text)


def listing(p: argparse.ArgumentParser) -> None:
    """``list``: whose keys, and whether removed ones too."""
    p.add_argument("--owner", help="only this owner's keys (default: every owner's)")
    p.add_argument("--all", action="store_true", help="include removed keys")


def relay(p: argparse.ArgumentParser) -> None:
    """``relay``: one pass or a loop, and what a failure does."""
    p.add_argument("--once", action="store_true", help="one pass, then exit")
    p.add_argument(
        "--interval", type=float, default=1.0, help="seconds between idle passes (default 1)"
    )
    p.add_argument(
        "--keep-going",
        action="store_true",
        help="go on after a failed delivery (it is retried with backoff); exit non-zero when "
        "stopped. By default the loop stops at the first failure, for a supervisor to see",
    )


def rotate(p: argparse.ArgumentParser) -> None:
    """``rotate-server-key``: start, or ``--finish`` (asks first)."""
    p.add_argument(
        "--finish",
        action="store_true",
        help="add no key: re-seal what is left, then drop ring keys no record uses (asks first)",
    )
    _yes(p, "finish without asking (needed when there is no terminal to ask on)")


def security_key(p: argparse.ArgumentParser) -> None:
    """``security-key``: what to do, for which account."""
    p.add_argument("do", choices=["enroll", "show", "remove"], help="what to do")
    p.add_argument("owner", help="the account")
    p.add_argument("--name", default="authenticator", help="the key's name (enroll)")
    p.add_argument("--issuer", default="keyturn", help="shown in the authenticator app (enroll)")


def diagram(p: argparse.ArgumentParser) -> None:
    """``diagram``: the format, the policy, a key, where to write."""
    p.add_argument(
        "--format", choices=["mermaid", "dot", "svg"], default="mermaid", help="default mermaid"
    )
    p.add_argument(
        "--policy",
        choices=list(drawing.POLICIES),
        default="default",
        help="draw the edges a policy decides (enable, edit) as under this policy: the "
        "library's default, or the API's (keyturn serve: enable is direct, edits keep a key "
        "active)",
    )
    p.add_argument("--key", type=int, help="highlight this key's state and its code's time")
    p.add_argument("--owner", help="with --key: act as this owner (default: the key's own)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to this file")
    p.add_argument(
        "--update",
        metavar="DIR",
        help="regenerate every committed diagram in DIR (Mermaid, DOT, SVG, PNG; default policy)",
    )


def nothing(_: argparse.ArgumentParser) -> None:
    """A command without options of its own."""
