"""The one place keyturn gets its logger from.

keyturn never configures structlog or logging: it asks for ``structlog.get_logger("keyturn")``
and the embedding application decides where events go. Services accept an injected logger; this
helper is their default. Events are stable snake_case past tense (``code_sent``,
``enabled_api_key``) and never carry a secret or a code.
"""

from __future__ import annotations

from typing import Any

import structlog


def get_logger() -> Any:  # noqa: ANN401 (structlog's lazy proxy has no useful static type)
    """Keyturn's logger: structlog's, named ``keyturn``, configured by the application."""
    return structlog.get_logger("keyturn")
