"""The machine-facing API: Deribit-compatible JSON-RPC over the key lifecycle (extra ``server``).

:mod:`keyturn.api.rpc` dispatches JSON-RPC requests to the service with Deribit's methods, errors
and objects; :mod:`keyturn.api.tokens` issues and checks access tokens; :mod:`keyturn.api.asgi`
serves it over HTTP as an ASGI application (``keyturn serve``). No lifecycle rule lives here:
every action goes through :class:`~keyturn.service.KeyService`.
"""
