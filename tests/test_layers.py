"""The tree shows the architecture: which subpackage may import which, read from the source.

Each subpackage of ``keyturn`` is a role. The core decides and does no I/O; crypto computes;
ports say what keyturn needs; adapters fill the ports; the service is the shell; the entry points
(api, portal, web, cli, diagrams) sit on top and ``wiring`` chooses adapters. These tests parse
every module's imports (``import`` and ``from ... import`` anywhere in the file, type-only ones
apart) and fail when a module reaches a layer its role may not, or when a module grows past
about 300 lines without saying at its top why it is one piece.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "src" / "keyturn"

#: What each role may import at run time, besides itself and the standard library.
ALLOWED: dict[str, set[str]] = {
    # crypto's pure functions (a public key's parse) and no other part of keyturn
    "core": {"crypto"},
    "crypto": {"core"},
    "ports": {"core"},
    "adapters": {"core", "crypto", "ports", "_log"},
    "service": {"core", "crypto", "ports", "_log"},
    "web": {"core", "service"},
    "diagrams": {"core"},
    "api": {"core", "crypto", "ports", "service", "_log"},
    "portal": {"core", "ports", "service", "web", "api", "adapters", "wiring", "keyturn"},
    "wiring": {"core", "crypto", "ports", "adapters", "service", "api"},
    "_log": set(),
    # the package's public names: the core's values and errors and the services
    "__init__": {"core", "crypto", "service"},
    "__main__": {"cli"},
    "testing": {"core", "crypto", "ports", "adapters", "service", "wiring"},
}

#: Modules the core may not import, at run time or for types: they do I/O.
IO_MODULES = {
    "sqlite3",
    "psycopg",
    "psycopg_pool",
    "socket",
    "smtplib",
    "subprocess",
    "os",
    "pathlib",
    "asyncio",
    "threading",
    "logging",
    "structlog",
    "time",
}

#: A module longer than this says why at the top of its docstring.
MAX_LINES = 300
REASON = "One piece:"


def _role(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0].removesuffix(".py")


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """The modules a file imports at run time, and those it imports only for types."""
    tree = ast.parse(path.read_text())
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(n) for child in node.body for n in ast.walk(child))
    runtime: set[str] = set()
    types: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        (types if id(node) in typing_only else runtime).update(names)
    return runtime, types


def _roles(modules: set[str]) -> set[str]:
    roles = set()
    for module in modules:
        parts = module.split(".")
        if parts[0] != "keyturn":
            continue
        if len(parts) == 1:
            roles.add("keyturn")
        elif (PACKAGE / parts[1]).is_dir() or (PACKAGE / f"{parts[1]}.py").exists():
            roles.add(parts[1])
        else:  # a name imported from the package itself: ``from keyturn import X``
            roles.add("keyturn")
    return roles


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_module_imports_only_the_layers_its_role_may(path: Path) -> None:
    """No module imports a layer above its own (e.g. the core never imports a store or the API)."""
    role = _role(path)
    if role not in ALLOWED:  # cli: the command line is an entry point and may use anything
        assert role == "cli"
        return
    runtime, _ = _imports(path)
    beyond = _roles(runtime) - ALLOWED[role] - {role}
    assert not beyond, f"{path.relative_to(PACKAGE)} ({role}) imports {sorted(beyond)}"


@pytest.mark.parametrize("path", [p for p in MODULES if _role(p) == "core"], ids=lambda p: p.name)
def test_the_core_does_no_io(path: Path) -> None:
    """The core imports no module that does I/O, not even for types, and no port but for types."""
    runtime, types = _imports(path)
    tops = {m.split(".")[0] for m in runtime | types}
    assert not tops & IO_MODULES, f"core/{path.name} imports {sorted(tops & IO_MODULES)}"
    assert "ports" not in _roles(runtime), f"core/{path.name} imports a port at run time"


def test_long_modules_say_why_they_are_one_piece() -> None:
    """A hand-written module over 300 lines starts its docstring's reasons with 'One piece:'."""
    long = {}
    for path in MODULES:
        if "_sync" in path.parts:  # generated from the _async twin, which is checked
            continue
        lines = path.read_text().count("\n")
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        if lines > MAX_LINES and REASON not in doc:
            long[str(path.relative_to(PACKAGE))] = lines
    assert not long, f"split these or say why at the top ({REASON!r}): {long}"


def test_the_layer_check_catches_an_upward_import(tmp_path: Path) -> None:
    """The import reader sees a run-time import and sets a type-only one apart."""
    module = tmp_path / "probe.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "import sqlite3\n"
        "from keyturn.adapters.sqlite import SQLiteKeyStore\n"
        "if TYPE_CHECKING:\n"
        "    from keyturn.ports import KeyStore\n"
        "def f():\n"
        "    from keyturn.api import rpc\n"
    )
    runtime, types = _imports(module)
    assert _roles(runtime) == {"adapters", "api"}
    assert _roles(types) == {"ports"}
    assert "sqlite3" in runtime
