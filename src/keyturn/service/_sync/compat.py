"""What the blocking service does differently from its async source: waiting, and a stop signal.

Written by hand, as is its twin ``keyturn.service._async.compat``.
"""

from __future__ import annotations

import threading

#: What a worker loop waits on to stop.
Event = threading.Event


def wait(stop: Event, seconds: float) -> None:
    """Wait ``seconds``, or until ``stop`` is set."""
    stop.wait(seconds)
