"""The service's operations, written once for the sync and the async service.

Each operation validates its input, loads the record, asks the ports for what the core cannot do
itself (a code, a check), lets :mod:`keyturn.core.decisions` decide, and commits the resulting
change in one atomic store write, retrying when another request got there first. Then it logs one
event and delivers the request's own notifications (best effort). Operations are generators that
yield their port calls (:mod:`keyturn.effects`): :class:`~keyturn.service.KeyService` runs them
against sync ports, :class:`~keyturn.aio.AsyncKeyService` against async ones. No business rule is
written here: where a rule seems to be needed, it belongs in :mod:`keyturn.core.decisions`.
"""

from __future__ import annotations

import enum
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Final, TypeVar

import attrs

from keyturn import validation
from keyturn.authentication import Authenticator
from keyturn.confirmations import Confirmations, check_code_shape
from keyturn.core import decisions
from keyturn.core.errors import CodeMismatch, ConcurrentUpdate, InvalidInput, KeyNotFound
from keyturn.core.lifecycle import Action, State
from keyturn.core.records import ApiKey, Challenge, Change, Confirmation, IssuedSecret, Notification
from keyturn.core.scope import Scope
from keyturn.crypto.hashing import new_client_id, new_id, new_secret
from keyturn.effects import STORE, VERIFIER
from keyturn.outbox import relay_pass
from keyturn.security_keys import SecurityKeys

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping, Sequence
    from datetime import datetime

    from keyturn.core.policy import Policy
    from keyturn.core.records import HistoryEntry, KeyEvent
    from keyturn.crypto.hashing import SecretHasher
    from keyturn.crypto.sealing import SecretBox
    from keyturn.effects import Op
    from keyturn.outbox import CodeSeal, RelayRules
    from keyturn.ports import Clock, SecondFactor

T = TypeVar("T")

#: Attempts at a write that lost a race before the conflict is handed to the caller.
WRITE_ATTEMPTS: Final = 4
#: The most entries one page of an access log holds (Deribit's ``count`` limit).
MAX_PAGE: Final = 10_000


class _Unset(enum.Enum):
    UNSET = enum.auto()


UNSET: Final = _Unset.UNSET


def forward_to_ops(service: Any, attribute: attrs.Attribute[Any], value: T) -> T:  # noqa: ANN401
    """An ``on_setattr`` hook: a service setting changed later reaches its operations too."""
    ops = getattr(service, "_ops", None)
    if ops is not None:
        setattr(ops, attribute.name, value)
    return value


@attrs.define(kw_only=True)
class Operations:
    """The lifecycle as operations; a service holds one and runs them against its ports."""

    clock: Clock
    secret_hasher: SecretHasher
    code_seal: CodeSeal
    policy: Policy
    logger: Any
    relay: RelayRules
    well_formed: Callable[[str], bool]
    secret_box: SecretBox | None = None
    second_factor: SecondFactor | None = None
    deliver_inline: bool = True
    confirmations: Confirmations = attrs.field(init=False, repr=False)
    authenticator: Authenticator = attrs.field(init=False, repr=False)
    security_keys: SecurityKeys = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self.confirmations = Confirmations(
            well_formed=self.well_formed,
            code_seal=self.code_seal,
            policy=self.policy,
            logger=self.logger,
            deliver=self.deliver,
        )
        self.authenticator = Authenticator(
            secret_hasher=self.secret_hasher,
            clock=self.clock,
            logger=self.logger,
            secret_box=self.secret_box,
        )
        self.security_keys = SecurityKeys(
            clock=self.clock,
            secret_hasher=self.secret_hasher,
            policy=self.policy,
            logger=self.logger,
            second_factor=self.second_factor,
            secret_box=self.secret_box,
        )

    # --- plumbing ---------------------------------------------------------------------------

    def load(self, key_id: object, owner: str, action: Action) -> Op[ApiKey]:
        """The key ``key_id`` of ``owner``; another owner's key is reported as missing."""
        key: ApiKey | None = yield STORE.get(validation.key_id(key_id))
        if key is None or key.owner != owner:
            raise KeyNotFound(key_id, action=action.value)
        return key

    def _committed(self, change: Change) -> Op[ApiKey]:
        for h in change.history:
            self.logger.info(
                h.event,
                key_id=change.key.id,
                owner=change.key.owner,
                action=h.action.value,
                from_state=h.from_state.value if h.from_state else None,
                to_state=h.to_state.value,
                actor=h.actor,
                version=h.version,
            )
        yield from self.deliver(change.notifications)
        return change.key

    def deliver(self, notifications: Sequence[Notification]) -> Op[None]:
        """Best effort: deliver this request's own notifications now; the relay has the rest."""
        if self.deliver_inline and notifications:
            ids = [n.id for n in notifications]
            yield from relay_pass(self.relay, self.clock, self.logger, ids)

    def _retrying(self, attempt: Callable[[], Op[T]]) -> Op[T]:
        for _ in range(WRITE_ATTEMPTS - 1):
            try:
                return (yield from attempt())
            except ConcurrentUpdate:
                continue
        return (yield from attempt())

    def _act(
        self,
        key_id: object,
        owner: object,
        action: Action,
        decide: Callable[..., Any],
        *,
        params: Mapping[str, str] | None = None,
        confirmation: Confirmation | None = None,
    ) -> Op[ApiKey]:
        """Load, check the state, confirm if the policy says so, decide, and commit.

        ``decide(key, now, challenge)`` returns the change (or ``None`` for no change), or is an
        operation that yields port calls before returning it.
        """
        who = validation.owner(owner)

        def attempt() -> Op[ApiKey]:
            key = yield from self.load(key_id, who, action)
            decisions.require(key, action)
            now = self.clock.now()
            challenge = None
            if action in self.policy.confirm:
                challenge = yield from self.confirmations.confirm(
                    action=action,
                    owner=who,
                    key_id=key.id,
                    params=params or {},
                    confirmation=confirmation,
                    now=now,
                )
            decided = decide(key, now, challenge)
            change = (yield from decided) if isinstance(decided, Generator) else decided
            if change is None:
                return key
            yield STORE.apply(change)
            return (yield from self._committed(change))

        return (yield from self._retrying(attempt))

    def _actor(self, actor: object, owner: object) -> str:
        return validation.actor(owner if actor is None else actor)

    def _seal(self, secret: str | None, client_id: str) -> str | None:
        """The secret sealed for signatures, if this service keeps secrets recoverable."""
        if secret is None or self.secret_box is None:
            return None
        return self.secret_box.seal(secret, context=client_id)

    # --- the lifecycle ----------------------------------------------------------------------

    def create(
        self,
        *,
        owner: object,
        name: object,
        max_scope: object,
        ip_whitelist: object = None,
        enabled_features: object = None,
        public_key: object = None,
        actor: object = None,
        confirmation: Confirmation | None = None,
        enable: bool = False,
    ) -> Op[IssuedSecret]:
        """See :meth:`keyturn.service.KeyService.create`."""
        if not isinstance(enable, bool):
            raise InvalidInput("enable", "must be true or false")
        who = validation.owner(owner)
        by = self._actor(actor, who)
        fields = {
            "name": validation.name(name),
            "max_scope": Scope.parse(max_scope),
            "ip_whitelist": validation.ip_whitelist(ip_whitelist),
            "enabled_features": validation.enabled_features(enabled_features),
        }
        pem = validation.public_key(public_key)
        params = {k: str(v) for k, v in fields.items()} | {"public_key": pem[1] if pem else ""}

        def attempt() -> Op[IssuedSecret]:
            now = self.clock.now()
            challenge = yield from self.confirmations.confirm(
                action=Action.CREATE,
                owner=who,
                key_id=None,
                params=params,
                confirmation=confirmation,
                now=now,
            )
            secret = None if pem else new_secret()
            client_id = new_client_id()
            key = ApiKey(
                id=0,
                owner=who,
                client_id=client_id,
                state=State.CREATED,
                version=0,
                created_at=now,
                updated_at=now,
                fingerprint=pem[1] if pem else self.secret_hasher.fingerprint(secret or ""),
                secret_digest=self.secret_hasher.digest(secret) if secret else None,
                public_key=pem[0] if pem else None,
                sealed_secret=self._seal(secret, client_id),
                **fields,  # type: ignore[arg-type]
            )
            change = decisions.created(
                key, now=now, actor=by, notification_id=new_id(), challenge=challenge
            )
            if enable:  # the answer shows the secret once, so it is acknowledged by this request
                acked = decisions.acknowledged(
                    change.key, now=now, actor=by, notification_id=new_id()
                )
                on = decisions.enabled_directly(
                    acked.key, now=now, policy=self.policy, actor=by, notification_id=new_id()
                )
                change = decisions.chain(change, acked, on)
            stored: ApiKey = yield STORE.insert(
                change, max_live_per_owner=self.policy.max_keys_per_owner
            )
            yield from self._committed(change.with_key_id(stored.id))
            return IssuedSecret(stored, secret)

        return (yield from self._retrying(attempt))

    def acknowledge_secret(self, key_id: object, *, owner: object, actor: object) -> Op[ApiKey]:
        """See :meth:`keyturn.service.KeyService.acknowledge_secret`."""
        by = self._actor(actor, owner)
        return (
            yield from self._act(
                key_id,
                owner,
                Action.ACKNOWLEDGE_SECRET,
                lambda k, now, _: decisions.acknowledged(
                    k, now=now, actor=by, notification_id=new_id()
                ),
            )
        )

    def send_code(self, key_id: object, owner: object, actor: object, action: Action) -> Op[ApiKey]:
        """Request activation, resend, or enable through a code: a code goes to the owner."""
        by = self._actor(actor, owner)

        def decide(key: ApiKey, now: datetime, _: Challenge | None) -> Op[Change]:
            decisions.check_send(key, action, now, self.policy)
            issued = yield VERIFIER.issue(subject=f"activation:{key.id}", owner=key.owner)
            notice = self.code_seal.seal(
                decisions.code_notice(
                    notification_id=new_id(),
                    owner=key.owner,
                    key_id=key.id,
                    key_name=key.name,
                    subject=f"Your code to activate API key {key.name!r}",
                    code=issued.code,
                    sent_at=now,
                    expires_at=now + self.policy.code_ttl,
                )
            )
            return decisions.code_sent(
                key,
                action,
                ref=issued.ref,
                code_notice=notice,
                now=now,
                policy=self.policy,
                actor=by,
                notification_id=new_id(),
            )

        return (yield from self._act(key_id, owner, action, decide))

    def verify_code(
        self, key_id: object, code: object, *, owner: object, actor: object
    ) -> Op[ApiKey]:
        """See :meth:`keyturn.service.KeyService.verify_code`."""
        by = self._actor(actor, owner)
        candidate = check_code_shape(self.well_formed, code, Action.VERIFY_CODE)
        matched = False

        def decide(key: ApiKey, now: datetime, _: Challenge | None) -> Op[Change]:
            nonlocal matched
            pending = decisions.check_verify(key, now, self.policy)
            matched = yield VERIFIER.check(
                subject=f"activation:{key.id}", ref=pending.ref, candidate=candidate
            )
            return decisions.code_checked(
                key,
                matched=matched,
                now=now,
                policy=self.policy,
                actor=by,
                notification_id=new_id(),
            )

        key = yield from self._act(key_id, owner, Action.VERIFY_CODE, decide)
        if not matched:
            raise CodeMismatch(
                key_id=key.id,
                state=key.state.value,
                action=Action.VERIFY_CODE.value,
                attempts_left=decisions.attempts_left(key, self.policy),
            )
        return key

    def cancel_activation(self, key_id: object, *, owner: object, actor: object) -> Op[ApiKey]:
        """See :meth:`keyturn.service.KeyService.cancel_activation`."""
        by = self._actor(actor, owner)
        return (
            yield from self._act(
                key_id,
                owner,
                Action.CANCEL_ACTIVATION,
                lambda k, now, _: decisions.cancelled(
                    k, now=now, actor=by, notification_id=new_id()
                ),
            )
        )

    def disable(
        self, key_id: object, *, owner: object, actor: object, confirmation: Confirmation | None
    ) -> Op[ApiKey]:
        """See :meth:`keyturn.service.KeyService.disable`."""
        by = self._actor(actor, owner)
        return (
            yield from self._act(
                key_id,
                owner,
                Action.DISABLE,
                lambda k, now, ch: decisions.disabled(
                    k, now=now, actor=by, notification_id=new_id(), challenge=ch
                ),
                confirmation=confirmation,
            )
        )

    def enable(self, key_id: object, *, owner: object, actor: object) -> Op[ApiKey]:
        """See :meth:`keyturn.service.KeyService.enable`."""
        if not self.policy.direct_enable:
            return (yield from self.send_code(key_id, owner, actor, Action.ENABLE))
        by = self._actor(actor, owner)
        return (
            yield from self._act(
                key_id,
                owner,
                Action.ENABLE,
                lambda k, now, _: decisions.enabled_directly(
                    k, now=now, policy=self.policy, actor=by, notification_id=new_id()
                ),
            )
        )

    def edit(
        self,
        key_id: object,
        *,
        owner: object,
        name: object,
        max_scope: object,
        ip_whitelist: object,
        enabled_features: object,
        actor: object,
        confirmation: Confirmation | None,
        enabled: object = None,
    ) -> Op[ApiKey]:
        """See :meth:`keyturn.service.KeyService.edit`."""
        if enabled is not None and not isinstance(enabled, bool):
            raise InvalidInput("enabled", "must be true, false or left out")
        by = self._actor(actor, owner)
        edit = decisions.Edit(
            name=None if name is UNSET else validation.name(name),
            max_scope=None if max_scope is UNSET else Scope.parse(max_scope),
            ip_whitelist=None if ip_whitelist is UNSET else validation.ip_whitelist(ip_whitelist),
            enabled_features=(
                None if enabled_features is UNSET else validation.enabled_features(enabled_features)
            ),
        )
        params = {f: str(v) for f, v in attrs.asdict(edit, recurse=False).items() if v is not None}
        if enabled is not None:
            params["enabled"] = str(enabled)

        def decide(key: ApiKey, now: datetime, ch: Challenge | None) -> Change | None:
            change = decisions.edited(
                key, edit, now=now, policy=self.policy, actor=by, notification_id=new_id()
            )
            after = key if change is None else change.key
            then = None
            if enabled is True and not after.enabled:
                then = decisions.enabled_directly(
                    after, now=now, policy=self.policy, actor=by, notification_id=new_id()
                )
            elif enabled is False and after.enabled:
                then = decisions.disabled(after, now=now, actor=by, notification_id=new_id())
            steps = [c for c in (change, then) if c is not None]
            if not steps:
                return None
            return attrs.evolve(decisions.chain(*steps), challenge=ch)

        return (
            yield from self._act(
                key_id, owner, Action.EDIT, decide, params=params, confirmation=confirmation
            )
        )

    def reset_secret(
        self, key_id: object, *, owner: object, actor: object, confirmation: Confirmation | None
    ) -> Op[IssuedSecret]:
        """See :meth:`keyturn.service.KeyService.reset_secret`."""
        by = self._actor(actor, owner)
        secret = new_secret()

        def decide(key: ApiKey, now: datetime, ch: Challenge | None) -> Change:
            if key.public_key is not None:
                raise InvalidInput(
                    "id",
                    "this key authenticates by public key and has no secret to reset",
                    action=Action.RESET_SECRET,
                )
            return decisions.secret_reset(
                key,
                secret_digest=self.secret_hasher.digest(secret),
                fingerprint=self.secret_hasher.fingerprint(secret),
                sealed_secret=self._seal(secret, key.client_id),
                now=now,
                actor=by,
                notification_id=new_id(),
                challenge=ch,
            )

        key = yield from self._act(
            key_id, owner, Action.RESET_SECRET, decide, confirmation=confirmation
        )
        return IssuedSecret(key, secret)

    def remove(
        self, key_id: object, *, owner: object, actor: object, confirmation: Confirmation | None
    ) -> Op[ApiKey]:
        """See :meth:`keyturn.service.KeyService.remove`."""
        by = self._actor(actor, owner)
        return (
            yield from self._act(
                key_id,
                owner,
                Action.REMOVE,
                lambda k, now, ch: decisions.removed(
                    k, now=now, actor=by, notification_id=new_id(), challenge=ch
                ),
                confirmation=confirmation,
            )
        )

    def unlock_activation(self, key_id: object, *, actor: object) -> Op[ApiKey]:
        """See :meth:`keyturn.service.KeyService.unlock_activation`."""
        by = validation.actor(actor)
        key: ApiKey | None = yield STORE.get(validation.key_id(key_id))
        if key is None:
            raise KeyNotFound(key_id, action=Action.UNLOCK_ACTIVATION.value)
        return (
            yield from self._act(
                key_id,
                key.owner,
                Action.UNLOCK_ACTIVATION,
                lambda k, now, _: decisions.unlocked(
                    k, now=now, actor=by, notification_id=new_id()
                ),
            )
        )

    # --- reading ----------------------------------------------------------------------------

    def get(self, key_id: object, *, owner: object) -> Op[ApiKey]:
        """See :meth:`keyturn.service.KeyService.get`."""
        return (yield from self.load(key_id, validation.owner(owner), Action.EDIT))

    def list_keys(self, *, owner: object, include_removed: bool) -> Op[list[ApiKey]]:
        """See :meth:`keyturn.service.KeyService.list_keys`."""
        keys: list[ApiKey] = yield STORE.list_keys(validation.owner(owner))
        return [k for k in keys if include_removed or k.live]

    def history(self, key_id: object, *, owner: object) -> Op[list[HistoryEntry]]:
        """See :meth:`keyturn.service.KeyService.history`."""
        key = yield from self.get(key_id, owner=owner)
        entries: list[HistoryEntry] = yield STORE.history(key.id)
        return entries

    def access_log(
        self, *, owner: object, events: Collection[str] | None, offset: object, limit: object
    ) -> Op[list[KeyEvent]]:
        """See :meth:`keyturn.service.KeyService.access_log`."""
        who = validation.owner(owner)
        first, count = validation.page(offset, limit, most=MAX_PAGE)
        page: list[KeyEvent] = yield STORE.access_log(
            who, events=None if events is None else frozenset(events), offset=first, limit=count
        )
        return page

    # --- sealed secrets ---------------------------------------------------------------------

    def reseal_secrets(self) -> Op[tuple[int, int]]:
        """See :meth:`keyturn.service.KeyService.reseal_secrets`."""
        if self.secret_box is None:
            raise InvalidInput("secret_box", "this service keeps no sealed secrets")
        box, done = self.secret_box, 0
        keys: list[ApiKey] = yield STORE.list_keys()
        for key in keys:
            if key.sealed_secret is not None and box.needs_reseal(key.sealed_secret):
                fresh = box.reseal(key.sealed_secret, context=key.client_id)
                swapped = yield STORE.reseal(key.id, expected=key.sealed_secret, sealed=fresh)
                done += int(swapped)
        after: list[ApiKey] = yield STORE.list_keys()
        left = sum(
            1 for k in after if k.sealed_secret is not None and box.needs_reseal(k.sealed_secret)
        )
        sk_done, sk_left = yield from self.security_keys.reseal(box)
        done, left = done + sk_done, left + sk_left
        self.logger.info("secrets_resealed", resealed=done, left=left, key_id_now=box.current)
        return done, left
