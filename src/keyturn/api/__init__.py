"""The machine-facing API: Deribit-compatible JSON-RPC over the key lifecycle (extra ``server``).

:mod:`keyturn.api.rpc` dispatches requests in Deribit's envelope to the methods
:mod:`keyturn.api.methods` gathers by role (:mod:`~keyturn.api.auth`,
:mod:`~keyturn.api.session`, :mod:`~keyturn.api.keys`), each with parameters declared in
:mod:`keyturn.api.params`; :mod:`keyturn.api.callers` finds who a call speaks for, and
:mod:`keyturn.api.tokens` issues and checks tokens bound to sessions in the store;
:mod:`keyturn.api.asgi` and :mod:`keyturn.api.websocket` serve it over HTTP and WebSocket
(``keyturn serve``). No lifecycle rule lives here: every action goes through the key service.
"""
