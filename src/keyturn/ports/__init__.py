"""The ports: what keyturn needs from the world, as ``typing.Protocol`` classes.

A *port* is the shape of a dependency as the service sees it; an *adapter* is one way to fill it
(:mod:`keyturn.adapters` ships clocks, code verifiers, notifiers and stores;
:mod:`keyturn.testing` ships fakes). The services take one of each, by keyword, and wire nothing
themselves: :mod:`keyturn.wiring` is the one place that chooses adapters.

* :class:`Clock` and :class:`SecondFactor` do no I/O and serve both services as they are.
* :class:`AsyncKeyStore`, :class:`AsyncCodeVerifier` and :class:`AsyncNotifier` are written once
  (``keyturn.ports._async``); :class:`KeyStore`, :class:`CodeVerifier` and :class:`Notifier`, the
  same methods and promises without ``await``, are generated from them (``keyturn.ports._sync``).
"""

from keyturn.ports._async.ports import AsyncCodeVerifier, AsyncKeyStore, AsyncNotifier
from keyturn.ports._sync.ports import CodeVerifier, KeyStore, Notifier
from keyturn.ports.common import Clock, IssuedCode, SecondFactor

__all__ = [
    "AsyncCodeVerifier",
    "AsyncKeyStore",
    "AsyncNotifier",
    "Clock",
    "CodeVerifier",
    "IssuedCode",
    "KeyStore",
    "Notifier",
    "SecondFactor",
]
