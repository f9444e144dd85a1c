"""Diagrams never drift from the machine, and the machine is checked as a graph.

Every trail from ``created`` (a walk that takes no edge twice) whose conditions can hold is
generated from the machine and driven through the service (model-based testing): an edge added to
the lifecycle without a way to drive it fails here.
"""

from __future__ import annotations

import itertools
import re
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from keyturn import KeyService, Policy, State, diagrams
from keyturn.core.lifecycle import (
    ACTION_DOCS,
    INITIAL,
    LIVE_STATES,
    TERMINAL,
    Action,
    Condition,
    Edge,
    edges,
)
from keyturn.core.machine import MACHINE
from keyturn.diagrams import pictures
from keyturn.testing import ManualClock, RecordingNotifier, make_service
from keyturn.wiring import API_POLICY

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def _dot(**kwargs: Any) -> str:
    """DOT source, or a skip where the graphviz package (extra ``diagrams``) is missing."""
    try:
        return diagrams.dot(**kwargs)
    except diagrams.GraphvizMissingError:
        pytest.skip("no graphviz Python package here (pip install 'keyturn[diagrams]')")


def _fresh_render(committed_svg: str) -> str:
    """The current SVG, or a skip where Graphviz is missing or another version made the file."""
    try:
        fresh = diagrams.svg(_dot())
    except diagrams.GraphvizMissingError:
        pytest.skip("no Graphviz here (.ci/run installs Debian's graphviz)")
    made_with, here = diagrams.graphviz_version(committed_svg), diagrams.graphviz_version(fresh)
    if made_with != here:
        pytest.skip(f"the diagrams were made with Graphviz {made_with}; this one is {here}")
    return fresh


class TestDrift:
    def test_mermaid_file_is_current(self) -> None:
        """diagrams/lifecycle.mmd is what the machine generates now."""
        assert (ROOT / "diagrams/lifecycle.mmd").read_text() == diagrams.mermaid()

    def test_dot_file_is_current(self) -> None:
        """diagrams/lifecycle.dot is what the machine generates now."""
        assert (ROOT / "diagrams/lifecycle.dot").read_text() == _dot()

    def test_svg_file_is_current(self) -> None:
        """diagrams/lifecycle.svg is what Graphviz renders from the current DOT."""
        committed = (ROOT / "diagrams/lifecycle.svg").read_text()
        assert committed == _fresh_render(committed)

    def test_png_file_is_current(self) -> None:
        """diagrams/lifecycle.png (the README's picture) is what Graphviz renders from the current DOT."""
        _fresh_render((ROOT / "diagrams/lifecycle.svg").read_text())
        assert (ROOT / "diagrams/lifecycle.png").read_bytes() == diagrams.png(_dot())

    def test_update_writes_every_file(self) -> None:
        """The files render_all() makes are exactly the committed ones."""
        assert sorted(diagrams.FILES) == sorted(p.name for p in (ROOT / "diagrams").iterdir())

    def test_readme_shows_the_png(self) -> None:
        """The README shows the committed PNG."""
        assert 'src="diagrams/lifecycle.png"' in README

    def test_readme_mermaid_block_is_the_file(self) -> None:
        """The README's Mermaid block is exactly diagrams/lifecycle.mmd."""
        blocks = re.findall(r"```mermaid\n(.*?)```", README, re.DOTALL)
        assert blocks == [(ROOT / "diagrams/lifecycle.mmd").read_text()]

    def test_readme_table_is_generated(self) -> None:
        """The README's state x action table is what the machine says."""
        assert pictures.markdown_table() in README

    def test_every_action_is_documented_in_readme(self) -> None:
        """Each action is named, with its description, in the README."""
        for action, doc in ACTION_DOCS.items():
            assert f"`{action.value}`" in README
            assert doc in README, action


NOTE = "code valid 42 s more, resend in 0 s"


class TestPerKeyDiagram:
    def test_mermaid_highlights_and_notes_inside_the_state(self) -> None:
        """A per-key Mermaid diagram marks the key's state and writes the note inside it."""
        text = diagrams.mermaid(highlight=State.PENDING_2FA, note=NOTE)
        assert "Class pending_2fa s_active" in text
        assert "classDef s_active fill:#ffd54f" in text
        assert f"pending_2fa : this key: {NOTE}" in text
        assert "note " not in text

    def test_dot_highlights_and_notes_inside_the_state(self) -> None:
        """A per-key DOT diagram fills the key's state and writes the note in its label, not beside it."""
        text = _dot(highlight=State.PENDING_2FA, note=NOTE)
        (node,) = [line for line in text.splitlines() if line.strip().startswith("pending_2fa [")]
        assert 'fillcolor="#ffd54f"' in node
        assert f"this key: {NOTE}" in node
        assert "xlabel" not in text

    def test_without_a_key_nothing_is_highlighted(self) -> None:
        """The plain diagram's highlight style is the plain style."""
        assert "#ffd54f" not in diagrams.mermaid()
        assert "#ffd54f" not in _dot()

    def test_captions_follow_the_policy(self) -> None:
        """Edge captions use the policy's numbers."""
        from datetime import timedelta  # noqa: PLC0415

        text = diagrams.mermaid(Policy(code_ttl=timedelta(minutes=10), max_attempts=3))
        assert "right code within 10 min" in text
        assert "max 3 per code" in text


def _arrows(text: str) -> list[tuple[str, str, str]]:
    """(source, dest, caption) of each arrow of a Mermaid diagram, the start and end left out."""
    found = re.findall(r"^\s*(\w+) --> (\w+): (.*)$", text, re.MULTILINE)
    return [(s, d, c) for s, d, c in found]


class _Model:
    """A throwaway model for MACHINE: each guard is an attribute of its name."""

    state: str


def _moves_of_the_machine(
    answers: dict[Condition, tuple[bool, ...]],
) -> set[tuple[State, Action, State]]:
    """Every (state, action, dest) MACHINE takes, triggered with each allowed answer of the guards."""
    model = _Model()
    MACHINE.add_model(model)
    moves: set[tuple[State, Action, State]] = set()
    try:
        for state in State:
            for action in MACHINE.get_triggers(state.value):
                for values in itertools.product(*answers.values()):
                    for guard, value in zip(answers, values, strict=True):
                        setattr(model, guard.value, value)
                    MACHINE.set_state(state.value, model=model)
                    if getattr(model, "trigger")(action):  # noqa: B009 (bound by add_model)
                        moves.add((state, Action(action), State(model.state)))
    finally:
        MACHINE.remove_model(model)
    return moves


class TestPicture:
    def test_shared_actions_are_drawn_once(self) -> None:
        """Remove is one arrow, from the shared box; no state has a loop; the box lists edit, reset and unlock, and only active, which an edit may keep or leave, lists edit again."""
        text = diagrams.mermaid()
        arrows = _arrows(text)
        assert [(s, d) for s, d, c in arrows if "remove" in c] == [(pictures.SHARED, "removed")]
        assert [a for a in arrows if a[0] == a[1]] == []
        shared = (
            "edit, reset_secret, unlock_activation keep the state, unless an arrow says otherwise"
        )
        assert shared in text
        assert re.findall(r"^  (\w+) : edit$", text, re.MULTILINE) == ["active"]
        assert len(arrows) == 8

    def test_an_action_between_two_states_is_one_caption(self) -> None:
        """ACTIVATE's two edges from a state (the dialog reopened, or a new code sent) are one arrow, with the caption of the one that sends a code."""
        captions = [(s, d, c) for s, d, c in _arrows(diagrams.mermaid()) if d == "pending_2fa"]
        assert captions == [
            (source, "pending_2fa", "request_activation:<br/>code sent, valid 5 min")
            for source in ("secret_acknowledged", "disabled")
        ]

    def test_long_captions_break_after_the_action(self) -> None:
        """A caption too long for its line breaks after the actions' colon where that takes no more lines, else wraps evenly, never inside an action's name."""
        one = pictures.Arrow(
            "pending_2fa", State.ACTIVE, ((Action.VERIFY_CODE, "right code within 5 min"),)
        )
        assert one.caption("|", 24, 24) == "verify_code:|right code within 5 min"
        why = "scope, whitelist or features changed"
        two = pictures.Arrow(
            "active", State.DISABLED, ((Action.DISABLE, "at once"), (Action.EDIT, why))
        )
        assert (
            two.caption("|", 24, 24)
            == "disable: at once|edit: scope, whitelist|or features changed"
        )

    def test_default_policy_sends_codes(self) -> None:
        """Under the default policy activation goes through a code (enable is ACTIVATE: no arrow to active of its own), and an edit of scope disables."""
        captions = {(s, d): c for s, d, c in _arrows(diagrams.mermaid())}
        assert "request_activation" in captions["disabled", "pending_2fa"]
        assert ("disabled", "active") not in captions
        assert "enable" not in "".join(captions.values())
        assert "edit" in captions["active", "disabled"]

    def test_api_policy_enables_directly(self) -> None:
        """Under the API's policy enable goes straight to active and an edit keeps a key active."""
        text = diagrams.mermaid(API_POLICY)
        captions = {(s, d): c for s, d, c in _arrows(text)}
        assert captions["disabled", "active"] == "enable: no code"
        assert captions["secret_acknowledged", "active"] == "enable: no code"
        assert "enable" not in captions["disabled", "pending_2fa"]
        assert "edit" not in captions["active", "disabled"]
        assert "direct_enable on, edit_deactivates off" in text
        assert "edit" in captions["pending_2fa", "secret_acknowledged"]  # the code ends

    @pytest.mark.parametrize("policy", [Policy(), API_POLICY], ids=["default", "api"])
    def test_picture_is_what_the_machine_does(self, policy: Policy) -> None:
        """Every move the machine makes under the policy is shown once (arrow, line in a state, or the shared box), and nothing else is."""
        shown = pictures.picture(policy)
        moves = _moves_of_the_machine(pictures.guard_answers(policy))
        drawn: set[tuple[State, Action, State]] = set()
        shared = shown.inside[pictures.SHARED][0]
        for arrow in shown.arrows:
            sources = LIVE_STATES if arrow.source == pictures.SHARED else (State(arrow.source),)
            drawn |= {(s, a, arrow.dest) for s in sources for a, _ in arrow.reasons}
        for state in LIVE_STATES:
            lines = shown.inside.get(state.value, ())
            drawn |= {
                (state, a, state)
                for a in Action
                if any(x == a.value or f"{a.value}:" in x for x in lines)
            }
            leaving = {
                (a, arrow_source)
                for arrow in shown.arrows
                for a, _ in arrow.reasons
                for arrow_source in [arrow.source]
            }
            drawn |= {
                (state, a, state)
                for a in Action
                if a.value in shared and (a, state.value) not in leaving
            }
        assert drawn == moves

    def test_every_guard_is_answered_under_a_policy(self) -> None:
        """Each guard is either settled by the policy or shown both ways."""
        assert set(pictures.guard_answers(Policy())) == set(Condition)


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
    if a is Action.REQUEST_ACTIVATION and edge.unless is Condition.CODE_REUSABLE:
        return lambda s, k, n: _after_the_wait(s).request_activation(k, owner=me)
    if a is Action.ENABLE and edge.unless is Condition.DIRECT_ENABLE:
        return lambda s, k, n: _after_the_wait(s).enable(k, owner=me)
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


def _after_the_wait(service: KeyService) -> KeyService:
    """``service`` once the resend wait of any code it sent is over (the code is still live)."""
    assert isinstance(service.clock, ManualClock)
    service.clock.advance(minutes=2)
    return service


def _resend(service: KeyService, key_id: int) -> None:
    _after_the_wait(service).resend_code(key_id, owner="alice")


def _verify(service: KeyService, key_id: int, code: str) -> None:
    try:
        service.verify_code(key_id, code, owner="alice")
    except Exception as e:
        if type(e).__name__ != "CodeMismatch":
            raise


def _feasible(path: list[Edge]) -> tuple[bool, bool]:
    """Whether the path's conditions can all hold, and the direct-enable policy it needs.

    A code stays live from the edge that sends it until a right code, an edit of the waiting key
    or a removal ends it; the drivers move the clock only just before a send, so a live code's
    resend wait is never over when an edge that reuses it is taken.
    """
    direct: bool | None = None
    origin: State | None = None
    live = False
    for e in path:
        for cond, must in ((e.when, True), (e.unless, False)):
            if cond is Condition.DIRECT_ENABLE:
                if direct is not None and direct != must:
                    return False, False
                direct = must
            if cond is Condition.CAME_FROM_DISABLED and (origin is State.DISABLED) != must:
                return False, False
        if e.when is Condition.CODE_REUSABLE and not live:
            return False, False
        if e.dest is State.PENDING_2FA and e.source is not State.PENDING_2FA:
            origin = e.source
        sends = e.unless in (Condition.CODE_REUSABLE, Condition.DIRECT_ENABLE)
        live = sends or e.action is Action.RESEND_CODE or (live and _keeps_code(e))
    return True, bool(direct)


def _keeps_code(edge: Edge) -> bool:
    """Whether a live code is still live after ``edge``."""
    if edge.action is Action.VERIFY_CODE:
        return edge.dest is State.PENDING_2FA
    if edge.action is Action.EDIT:
        return edge.source is not State.PENDING_2FA
    return edge.action is not Action.REMOVE


#: The longest trail driven: long enough that every edge is taken, short enough to stay fast.
MAX_TRAIL = 5


def _trails() -> list[list[Edge]]:
    """Every walk from ``created`` of at most MAX_TRAIL edges that takes no edge twice.

    A self-loop ends a walk.
    """
    paths: list[list[Edge]] = []

    def walk(state: State, used: frozenset[int], path: list[Edge]) -> None:
        if len(path) >= MAX_TRAIL:
            return
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
