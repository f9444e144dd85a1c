"""The command's entry point: parse, configure logging, run one command, answer any failure.

Every failure, a usage error included, ends here as one line on stderr (or one JSON object on
stdout with ``--json``) and an exit code from :data:`~keyturn.cli.failures.EXIT_CODES`; never a
traceback. The command is an application, so it (and not the library) decides where log events
go: warnings to stderr, everything with ``-v``.
"""

from __future__ import annotations

import logging
import os
import select
import sqlite3
import sys
from typing import TYPE_CHECKING, Any

import structlog

from keyturn import diagrams
from keyturn.core.errors import KeyturnError

from . import output
from .app import App
from .failures import CLOSED_PIPE, INTERRUPTED, OK, Failure, explain
from .parser import build

if TYPE_CHECKING:
    from collections.abc import MutableMapping, Sequence

_HANDLED = (KeyturnError, Failure, diagrams.GraphvizMissingError, OSError, sqlite3.Error)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    wants_json = "--json" in argv[: argv.index("--")] if "--" in argv else "--json" in argv
    try:
        args = build(json=wants_json).parse_args(argv)
    except Failure as e:
        return _answered(e, json=wants_json)
    app = App(args)
    _configure_logging(verbose=args.verbose, failures=app.delivery_errors)
    try:
        args.run(app)
        sys.stdout.flush()  # a closed pipe shows here, not in Python's flush at exit
    except _HANDLED as e:
        if isinstance(e, BrokenPipeError) and _stdout_gone():
            return _closed_pipe()  # the reader went away: not an error of the command's
        return _answered(explain(e, app.context()), json=args.json)
    except KeyboardInterrupt:
        return INTERRUPTED
    finally:
        app.close()
    return OK


def _stdout_gone() -> bool:
    """Whether the reader of standard output went away (its pipe reports an error)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(event & (select.POLLERR | select.POLLHUP) for _, event in poller.poll(0))
    except (OSError, ValueError):  # no descriptor to ask (replaced stdout): not a closed pipe
        return False


def _closed_pipe() -> int:
    """Whoever read the output stopped (``| head``): write nothing more, say nothing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # Python's own flush at exit must not fail again
    os.close(devnull)
    return CLOSED_PIPE


def _answered(failure: Failure, *, json: bool) -> int:
    """:func:`_answer`, or the closed pipe's code if the reader went away meanwhile."""
    try:
        return _answer(failure, json=json)
    except BrokenPipeError:
        return _closed_pipe()


def _answer(failure: Failure, *, json: bool) -> int:
    if json:
        print(output.json_text(failure.body()))
    else:
        err = output.stderr()
        print(f"{err('keyturn:', 'bold', 'red')} {failure.message}", file=sys.stderr)
    return failure.exit


def _configure_logging(*, verbose: bool, failures: list[str]) -> None:
    """Warnings to stderr (every event with ``-v``); failed deliveries collected for the relay.

    psycopg's pool logs each failed connection attempt, and the relay logs each failed delivery;
    the command reports the outcome itself, in one line, so those show only with ``-v``.
    """
    logging.getLogger("psycopg").setLevel(logging.WARNING if verbose else logging.CRITICAL)

    def collect(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:  # noqa: ANN401
        if event.get("event") == "notification_failed":
            failures.append(str(event.get("error", "error")))
            if not verbose:
                raise structlog.DropEvent
        return event

    structlog.reset_defaults()
    structlog.configure(
        processors=[collect, *structlog.get_config()["processors"]],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.INFO if verbose else logging.WARNING
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
