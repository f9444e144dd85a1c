"""The one place keyturn gets its logger from.

keyturn never configures structlog or logging: the embedding application decides where events
go. Services accept an injected logger; :func:`get_logger` is their default, and it follows what
the application set up, at every call:

* if the application configured structlog (``structlog.is_configured()``), events go through
  ``structlog.get_logger("keyturn")`` and that configuration;
* otherwise they go to the standard library's ``logging.getLogger("keyturn")``, rendered as
  ``logfmt`` text, and obey its levels and handlers like any library's log.

So an application that configured nothing sees no INFO event on stdout or anywhere: Python's
last-resort handler prints only WARNING and above (a notifier that keeps failing, an expired
code) to stderr. structlog's own unconfigured default would print every event to stdout.
Events are stable snake_case past tense (``code_sent``, ``enabled_api_key``) and never carry a
secret or a code.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import structlog

#: The standard-library logger keyturn's events go to while structlog is not configured.
STDLIB_LOGGER: Final = logging.getLogger("keyturn")

_PROXY: list[Any] = [structlog.get_logger("keyturn")]  # a lazy proxy: reads the config per call
_STDLIB: Final = structlog.wrap_logger(
    STDLIB_LOGGER,
    processors=[
        structlog.stdlib.filter_by_level,  # drop below the logger's level before rendering
        structlog.processors.LogfmtRenderer(key_order=["event"]),
    ],
    wrapper_class=structlog.stdlib.BoundLogger,
)


class _KeyturnLogger:
    """structlog's ``keyturn`` logger if the application configured structlog, else stdlib's."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401 (structlog's loggers are untyped)
        return getattr(_PROXY[0] if structlog.is_configured() else _STDLIB, name)

    def __repr__(self) -> str:
        return "<keyturn logger>"


def get_logger() -> Any:  # noqa: ANN401 (structlog's lazy proxy has no useful static type)
    """Keyturn's logger: structlog's when configured, else the standard ``keyturn`` logger."""
    return _KeyturnLogger()


def forget_cached_logger() -> None:
    """Drop the structlog logger bound under an earlier configuration.

    With ``cache_logger_on_first_use=True`` structlog binds a logger once, for good; a test that
    configures structlog anew (or resets it) calls this so that keyturn follows the new setup.
    """
    _PROXY[0] = structlog.get_logger("keyturn")
