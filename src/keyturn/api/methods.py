"""Every method the API serves, gathered by role into the one table the app is built with.

:mod:`keyturn.api.auth` (``public/auth``), :mod:`keyturn.api.session` (time, test, hello,
status, heartbeats, logout) and :mod:`keyturn.api.keys` (the API-key methods). Adding a method
to a role's ``METHODS`` serves it; this module holds no logic.
"""

from __future__ import annotations

from typing import Final

from keyturn.api import auth, keys, session

METHODS: Final = (*auth.METHODS, *session.METHODS, *keys.METHODS)
