"""What the async service does differently from its blocking twin: waiting, and a stop signal.

Written by hand, as is its twin ``keyturn.service._sync.compat``; everything else in ``_async``
is the source of generated code.
"""

from __future__ import annotations

import asyncio
import contextlib

#: What a worker loop waits on to stop.
Event = asyncio.Event


async def wait(stop: Event, seconds: float) -> None:
    """Wait ``seconds``, or until ``stop`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
