"""Deribit's API-key methods over the key service; how each maps onto the lifecycle.

* ``create_api_key`` creates the key, records the acknowledgement (this answer is the one
  showing of the secret) and enables it directly: an API caller is already authenticated with
  ``account:read_write``. ``enable_api_key`` is the direct-enable edge.
* ``enabled`` is true exactly when the key is ``active``; a key a person left in ``created``,
  ``secret_acknowledged`` or ``pending_2fa`` in the portal shows ``enabled: false``.
* Idempotent as on Deribit: enabling an enabled key and disabling one that is not enabled
  answer the key as it is and change nothing. The service refuses both (its rules: no edge
  leaves ``active`` by ``enable``, none leaves ``disabled`` by ``disable``), so the API reads the
  key first and answers it; no lifecycle rule is bent for it.
* Deribit's security keys: while the caller's account has one enrolled, the calls Deribit
  guards (create, edit, disable, change scope, list) first answer
  ``security_key_authorization_required`` with a challenge; the same call repeated with
  ``authorization_data`` (the TOTP code) and ``challenge`` proceeds
  (:mod:`keyturn.core.security_keys`). Each guarded method's parameters are checked first, so a
  malformed request does not spend a challenge.

No lifecycle rule lives here: every action goes through the async service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from keyturn.api import errors
from keyturn.api.errors import RpcError
from keyturn.api.objects import ACCESS_LOG_EVENTS, access_log_entry, key_object
from keyturn.api.params import SECURITY_ANSWER, Kind, Param
from keyturn.api.rpc import Method
from keyturn.core import validation
from keyturn.core.errors import SecurityKeyRequired
from keyturn.core.records import SecurityAnswer
from keyturn.core.scope import Scope
from keyturn.service import UNSET

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from keyturn.api.rpc import Context
    from keyturn.core.records import ApiKey

    _Handler = Callable[[Context, dict[str, Any]], Awaitable[Any]]

#: Scope a key-management call needs: account:read_write (list: account:read).
_READ_WRITE: Final = Scope.parse("account:read_write")
_READ: Final = Scope.parse("account:read")
DEFAULT_KEY_NAME: Final = "api_key"
_ID: Final = Param("id", Kind.INT, required=True)
_SCOPE: Final = Param("max_scope", Kind.STR, required=True)


def _guarded(run: _Handler) -> _Handler:
    """``run`` answering a security-key challenge while the account has a security key."""

    async def guarded(ctx: Context, params: dict[str, Any]) -> Any:  # noqa: ANN401
        try:
            return await run(ctx, params)
        except SecurityKeyRequired as e:
            return {
                "security_key_authorization_required": True,
                "security_keys": [{"type": kind, "name": name} for kind, name in e.security_keys],
                "challenge": e.challenge,
            }

    return guarded


async def _guard(ctx: Context, call: str, params: dict[str, Any]) -> None:
    """Deribit's security-key check for a guarded call, once its parameters are checked."""
    code, challenge = params.get("authorization_data"), params.get("challenge")
    answer = None if challenge is None else SecurityAnswer(challenge, code or "")
    answered = {p.name for p in SECURITY_ANSWER}
    await ctx.rpc.service.authorize_call(
        owner=ctx.principal.owner,
        call=call,
        params={k: v for k, v in params.items() if k not in answered},
        answer=answer,
        enrolled=ctx.principal.security_key,
    )


async def _managed(ctx: Context, params: dict[str, Any]) -> ApiKey:
    """The key of the call, refused if its scope exceeds the caller's."""
    key = await ctx.rpc.service.get(params["id"], owner=ctx.principal.owner)
    if not ctx.principal.max_scope.covers(key.max_scope):
        raise RpcError(errors.SCOPE_EXCEEDED)
    return key


def _scope_within(ctx: Context, text: str) -> str:
    if not ctx.principal.max_scope.covers(Scope.parse(text)):
        raise RpcError(errors.SCOPE_EXCEEDED)
    return text


def _actor(ctx: Context) -> str:
    return f"api:{ctx.principal.client_id}"


async def create_api_key(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """Create, acknowledge (this answer shows the secret) and enable a key, in one write."""
    scope = _scope_within(ctx, params["max_scope"])
    name = validation.name(params.get("name") or DEFAULT_KEY_NAME)
    public_key, features = params.get("public_key"), params.get("enabled_features")
    validation.public_key(public_key)
    validation.enabled_features(features)
    await _guard(ctx, "private/create_api_key", params)
    issued = await ctx.rpc.service.create(
        owner=ctx.principal.owner,
        name=name,
        max_scope=scope,
        public_key=public_key,
        enabled_features=features,
        actor=_actor(ctx),
        enable=True,
    )
    return key_object(issued.key, issued.client_secret)


async def edit_api_key(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """Change scope (required), name, features, whitelist, and enable or disable: one write."""
    key = await _managed(ctx, params)
    scope = _scope_within(ctx, params["max_scope"])
    name, features = params.get("name"), params.get("enabled_features")
    whitelist = params.get("ip_whitelist")
    if name is not None:
        validation.name(name)
    validation.enabled_features(features)
    validation.ip_whitelist(whitelist)
    await _guard(ctx, "private/edit_api_key", params)
    edited = await ctx.rpc.service.edit(
        key.id,
        owner=ctx.principal.owner,
        actor=_actor(ctx),
        loaded=key,
        max_scope=scope,
        name=UNSET if name is None else name,
        enabled_features=UNSET if features is None else features,
        ip_whitelist=UNSET if whitelist is None else whitelist,
        enabled=params.get("enabled"),
    )
    return key_object(edited)


async def enable_api_key(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """Enable a key directly (the caller is authorised by its token); an enabled one as it is."""
    key = await _managed(ctx, params)
    if key.enabled:
        return key_object(key)
    enabled = await ctx.rpc.service.enable(
        key.id, owner=ctx.principal.owner, actor=_actor(ctx), loaded=key
    )
    return key_object(enabled)


async def disable_api_key(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """Disable a key; its tokens and credentials fail from the next request on.

    A key that is not enabled is answered as it is, once the security key (if any) agrees.
    """
    key = await _managed(ctx, params)
    await _guard(ctx, "private/disable_api_key", params)
    if not key.enabled:
        return key_object(key)
    disabled = await ctx.rpc.service.disable(
        key.id, owner=ctx.principal.owner, actor=_actor(ctx), loaded=key
    )
    return key_object(disabled)


async def list_api_keys(ctx: Context, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The caller's live keys, with fingerprints in place of secrets."""
    await _guard(ctx, "private/list_api_keys", params)
    return [key_object(k) for k in await ctx.rpc.service.list_keys(owner=ctx.principal.owner)]


async def remove_api_key(ctx: Context, params: dict[str, Any]) -> str:
    """Remove a key for good."""
    key = await _managed(ctx, params)
    await ctx.rpc.service.remove(key.id, owner=ctx.principal.owner, actor=_actor(ctx), loaded=key)
    return "ok"


async def reset_api_key(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """A new secret, in this answer only; the old one stops working at once."""
    key = await _managed(ctx, params)
    issued = await ctx.rpc.service.reset_secret(
        key.id, owner=ctx.principal.owner, actor=_actor(ctx), loaded=key
    )
    return key_object(issued.key, issued.client_secret)


async def change_api_key_name(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """Rename a key."""
    key = await _managed(ctx, params)
    renamed = await ctx.rpc.service.edit(
        key.id, owner=ctx.principal.owner, actor=_actor(ctx), name=params["name"], loaded=key
    )
    return key_object(renamed)


async def change_scope_in_api_key(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """Change a key's scope."""
    key = await _managed(ctx, params)
    scope = _scope_within(ctx, params["max_scope"])
    await _guard(ctx, "private/change_scope_in_api_key", params)
    changed = await ctx.rpc.service.edit(
        key.id, owner=ctx.principal.owner, actor=_actor(ctx), max_scope=scope, loaded=key
    )
    return key_object(changed)


async def get_access_log(ctx: Context, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The key events of the caller's keys, newest first (``offset``, ``count`` up to 10000).

    One indexed read of one page, however long the account's history.
    """
    events = await ctx.rpc.service.access_log(
        owner=ctx.principal.owner,
        events=ACCESS_LOG_EVENTS,
        offset=params.get("offset", 0),
        limit=params.get("count", 10),
    )
    return [access_log_entry(e.client_id, e.entry) for e in events]


_NAME: Final = Param("name", Kind.STR)
_FEATURES: Final = Param("enabled_features", Kind.STR_LIST)
METHODS: Final = (
    Method(
        "private/create_api_key",
        _guarded(create_api_key),
        (_SCOPE, _NAME, Param("public_key", Kind.STR), _FEATURES, *SECURITY_ANSWER),
        _READ_WRITE,
    ),
    Method(
        "private/edit_api_key",
        _guarded(edit_api_key),
        (
            _ID,
            _SCOPE,
            _NAME,
            Param("enabled", Kind.BOOL),
            _FEATURES,
            Param("ip_whitelist", Kind.STR_LIST),
            *SECURITY_ANSWER,
        ),
        _READ_WRITE,
    ),
    Method("private/enable_api_key", enable_api_key, (_ID,), _READ_WRITE),
    Method(
        "private/disable_api_key", _guarded(disable_api_key), (_ID, *SECURITY_ANSWER), _READ_WRITE
    ),
    Method("private/list_api_keys", _guarded(list_api_keys), SECURITY_ANSWER, _READ),
    Method("private/remove_api_key", remove_api_key, (_ID,), _READ_WRITE),
    Method("private/reset_api_key", reset_api_key, (_ID,), _READ_WRITE),
    Method(
        "private/change_api_key_name",
        change_api_key_name,
        (_ID, Param("name", Kind.STR, required=True)),
        _READ_WRITE,
    ),
    Method(
        "private/change_scope_in_api_key",
        _guarded(change_scope_in_api_key),
        (_ID, _SCOPE, *SECURITY_ANSWER),
        _READ_WRITE,
    ),
    Method(
        "private/get_access_log",
        get_access_log,
        (Param("offset", Kind.INT), Param("count", Kind.INT)),
        _READ,
    ),
)
