"""Diagrams never drift from the machine, and the machine is checked as a graph.

Every trail from ``created`` (a walk that takes no edge twice) whose conditions can hold is
generated from the machine and driven through the service (model-based testing): an edge added to
the lifecycle without a way to drive it fails here.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from keyturn import KeyService, Policy, State, diagrams
from keyturn.lifecycle import ACTION_DOCS, INITIAL, TERMINAL, Action, Condition, Edge, edges
from keyturn.testing import ManualClock, RecordingNotifier, make_service

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


class TestDrift:
    def test_mermaid_file_is_current(self) -> None:
        """diagrams/lifecycle.mmd is what the machine generates now."""
        assert (ROOT / "diagrams/lifecycle.mmd").read_text() == diagrams.mermaid()

    def test_dot_file_is_current(self) -> None:
        """diagrams/lifecycle.dot is what the machine generates now."""
        assert (ROOT / "diagrams/lifecycle.dot").read_text() == diagrams.dot()

    def test_svg_file_is_current(self) -> None:
        """diagrams/lifecycle.svg is what Graphviz renders from the current DOT."""
        try:
            fresh = diagrams.svg(diagrams.dot())
        except diagrams.GraphvizMissingError:
            pytest.skip("no Graphviz here (.ci/run installs Debian's graphviz)")
        committed = (ROOT / "diagrams/lifecycle.svg").read_text()
        made_with, here = diagrams.graphviz_version(committed), diagrams.graphviz_version(fresh)
        if made_with != here:
            pytest.skip(f"the SVG was made with Graphviz {made_with}; this one is {here}")
        assert committed == fresh

    def test_readme_mermaid_block_is_the_file(self) -> None:
        """The README's Mermaid block is exactly diagrams/lifecycle.mmd."""
        blocks = re.findall(r"```mermaid\n(.*?)```", README, re.DOTALL)
        assert blocks == [(ROOT / "diagrams/lifecycle.mmd").read_text()]

    def test_readme_table_is_generated(self) -> None:
        """The README's state x action table is what the machine says."""
        assert diagrams.markdown_table() in README

    def test_every_action_is_documented_in_readme(self) -> None:
        """Each action is named, with its description, in the README."""
        for action, doc in ACTION_DOCS.items():
            assert f"`{action.value}`" in README
            assert doc in README, action


class TestPerKeyDiagram:
    def test_highlight_and_note(self) -> None:
        """A per-key diagram marks the key's state and shows the note."""
        text = diagrams.mermaid(highlight=State.PENDING_2FA, note="code valid 42 s more")
        assert "class pending_2fa current" in text
        assert "note right of pending_2fa: code valid 42 s more" in text
        assert 'fillcolor="#ffd54f"' in diagrams.dot(highlight=State.ACTIVE)

    def test_captions_follow_the_policy(self) -> None:
        """Edge captions use the policy's numbers."""
        from datetime import timedelta  # noqa: PLC0415

        text = diagrams.mermaid(Policy(code_ttl=timedelta(minutes=10), max_attempts=3))
        assert "right code within 10 min" in text
        assert "max 3 per code" in text


def _graph() -> dict[State, set[State]]:
    out: dict[State, set[State]] = {s: set() for s in State}
    for e in edges():
        out[e.source].add(e.dest)
    return out


class TestGraph:
    def test_every_state_is_reachable(self) -> None:
        """Every state can be reached from created."""
        seen, todo = {INITIAL}, deque([INITIAL])
        while todo:
            for nxt in _graph()[todo.popleft()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        assert seen == set(State)

    def test_only_removed_is_a_dead_end(self) -> None:
        """Every state but removed has a way out to another state."""
        for state, nexts in _graph().items():
            assert (state in TERMINAL) == (nexts - {state} == set()), state


# --- model-based: drive every trail --------------------------------------------------

Drive = Callable[[KeyService, int, RecordingNotifier], Any]


def _driver(edge: Edge) -> Drive:
    """How to make the service take ``edge``. A new edge needs an entry here."""
    a = edge.action
    me = "alice"
    if a is Action.VERIFY_CODE:
        right = edge.when is Condition.CODE_ACCEPTED
        return lambda s, k, n: _verify(s, k, n.last_code(k) if right else "999999")
    if a is Action.EDIT:
        if edge.when is Condition.EDIT_DEACTIVATES:
            return lambda s, k, n: s.edit(k, owner=me, max_scope="wallet:read")
        return lambda s, k, n: s.edit(k, owner=me, name=f"n{s.get(k, owner=me).version}")
    simple: dict[Action, Drive] = {
        Action.ACKNOWLEDGE_SECRET: lambda s, k, n: s.acknowledge_secret(k, owner=me),
        Action.REQUEST_ACTIVATION: lambda s, k, n: s.request_activation(k, owner=me),
        Action.RESEND_CODE: lambda s, k, n: _resend(s, k),
        Action.CANCEL_ACTIVATION: lambda s, k, n: s.cancel_activation(k, owner=me),
        Action.DISABLE: lambda s, k, n: s.disable(k, owner=me),
        Action.ENABLE: lambda s, k, n: s.enable(k, owner=me),
        Action.RESET_SECRET: lambda s, k, n: s.reset_secret(k, owner=me),
        Action.REMOVE: lambda s, k, n: s.remove(k, owner=me),
        Action.UNLOCK_ACTIVATION: lambda s, k, n: s.unlock_activation(k, actor="ops"),
    }
    return simple[a]


def _resend(service: KeyService, key_id: int) -> None:
    assert isinstance(service.clock, ManualClock)
    service.clock.advance(minutes=2)
    service.resend_code(key_id, owner="alice")


def _verify(service: KeyService, key_id: int, code: str) -> None:
    try:
        service.verify_code(key_id, code, owner="alice")
    except Exception as e:
        if type(e).__name__ != "CodeMismatch":
            raise


def _feasible(path: list[Edge]) -> tuple[bool, bool]:
    """Whether the path's conditions can all hold, and the direct-enable policy it needs."""
    direct: bool | None = None
    origin: State | None = None
    for e in path:
        for cond, must in ((e.when, True), (e.unless, False)):
            if cond is Condition.DIRECT_ENABLE:
                if direct is not None and direct != must:
                    return False, False
                direct = must
            if cond is Condition.CAME_FROM_DISABLED and (origin is State.DISABLED) != must:
                return False, False
        if e.dest is State.PENDING_2FA and e.source is not State.PENDING_2FA:
            origin = e.source
    return True, bool(direct)


def _trails() -> list[list[Edge]]:
    """Every walk from ``created`` that takes no edge twice; a self-loop ends a walk."""
    paths: list[list[Edge]] = []

    def walk(state: State, used: frozenset[int], path: list[Edge]) -> None:
        for e in edges():
            if e.source is not state or id(e) in used:
                continue
            step = [*path, e]
            paths.append(step)
            if e.dest is not state:
                walk(e.dest, used | {id(e)}, step)

    walk(INITIAL, frozenset(), [])
    return [p for p in paths if _feasible(p)[0]]


PATHS = _trails()


def test_paths_cover_every_edge() -> None:
    """The generated trails take every edge of the machine at least once."""
    assert {id(e) for p in PATHS for e in p} == {id(e) for e in edges()}
    assert len(PATHS) > 50


@pytest.mark.parametrize(
    "path", PATHS, ids=["-".join(f"{e.action.value}>{e.dest.value}" for e in p) for p in PATHS]
)
def test_trail(path: list[Edge]) -> None:
    """Driving the trail's actions through the service visits exactly the trail's states."""
    notifier = RecordingNotifier()
    service = make_service(notifier=notifier, policy=Policy(direct_enable=_feasible(path)[1]))
    key_id = service.create(owner="alice", name="k", max_scope="account:read").key.id
    for edge in path:
        assert service.get(key_id, owner="alice").state is edge.source
        _driver(edge)(service, key_id, notifier)
        assert service.get(key_id, owner="alice").state is edge.dest, edge
