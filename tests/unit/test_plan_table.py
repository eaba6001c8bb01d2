"""The planner table (SPEC §3): every desired action by every observed situation of one box.

Each case builds real shares for the situation, observes them, plans, and checks the operation
kinds, the reason of the config change, the notices, and the state `status` reports. The
situations are set up with the box armed for its desired action (for action `none`: armed for
a backup, i.e. the operator has just set the box back to none).
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controller.core.plan import make_plan
from controller.core.status import box_states
from controller.io.observe import observe
from controller.io.shares import Shares
from schema.desired import DesiredState
from schema.layout import PXE_CFG_DIR, hex_ip
from schema.request import request_id
from tests.lab_builder import desired, make_shares, managed_config, write_config, write_result

IP = "10.0.2.15"
OTHER = {"name": "tb-other", "ip": "10.0.2.99"}
ACTIONS = ["none", "backup", "backup-again", "restore", "refresh-info", "rescue"]
ARM = {"create-box-dir", "write-hostname", "write-request", "write-disk-list", "write-config"}


def box(action: str) -> dict[str, Any]:
    return {"name": "tb1", "ip": IP, "action": action}


def arm_on_share(root: Path, shares: Shares, action: str) -> DesiredState:
    """Apply the plan for `action` so the box is armed exactly as testboxctl arms it."""
    from controller.io.apply import apply_plan

    state = desired(box(action))
    apply_plan(make_plan(state, observe(shares)), shares)
    return state


def rid_of(state: DesiredState) -> str:
    rid = request_id(state.effective_boxes()[0])
    assert rid is not None
    return rid


# Situation builders: (tmp root, shares, desired action) -> the desired state to plan against.
def s_nothing(root: Path, shares: Shares, action: str) -> DesiredState:
    return desired(box(action))


def _armed_for(shares: Shares, root: Path, action: str) -> DesiredState:
    return arm_on_share(root, shares, action if action != "none" else "backup")


def s_armed(root: Path, shares: Shares, action: str) -> DesiredState:
    _armed_for(shares, root, action)
    return desired(box(action))


def _with_result(outcome: str, attempt: int) -> Callable[[Path, Shares, str], DesiredState]:
    def build(root: Path, shares: Shares, action: str) -> DesiredState:
        armed = _armed_for(shares, root, action)
        a = armed.boxes[0].action
        write_result(shares, IP, rid_of(armed), outcome, attempt, action=a)
        return desired(box(action))

    return build


def s_rescue_ready(root: Path, shares: Shares, action: str) -> DesiredState:
    armed = arm_on_share(root, shares, "rescue")
    write_result(shares, IP, rid_of(armed), "rescue-ready", 1, action="rescue")
    return desired(box(action))


def s_box_removed(root: Path, shares: Shares, action: str) -> DesiredState:
    _armed_for(shares, root, action)
    return desired(OTHER)


def s_drifted(root: Path, shares: Shares, action: str) -> DesiredState:
    armed = _armed_for(shares, root, action)
    name, content = managed_config(armed, "tb1")
    write_config(shares, name, content.replace("LOCALBOOT 0", "LOCALBOOT 0\nMENU HIDDEN"))
    return desired(box(action))


def s_foreign(root: Path, shares: Shares, action: str) -> DesiredState:
    write_config(shares, hex_ip(IP), "DEFAULT hand-made\nLABEL hand-made\n  LOCALBOOT 0\n")
    return desired(box(action))


SITUATIONS: dict[str, Callable[[Path, Shares, str], DesiredState]] = {
    "nothing": s_nothing,
    "armed": s_armed,
    "success": _with_result("success", 1),
    "failed-below-limit": _with_result("failure", 1),
    "at-limit": _with_result("failure", 3),
    "rescue-ready": s_rescue_ready,
    "box-removed": s_box_removed,
    "drifted-config": s_drifted,
    "foreign-config": s_foreign,
}

# situation -> (ops, config reason fragment, notices, state) for action none / for an armable
# action. The rescue-ready row differs for rescue itself (see RESCUE_READY_RESCUE).
Row = tuple[set[str], str | None, set[str], str | None]
EXPECT: dict[str, tuple[Row, Row]] = {
    "nothing": (
        ({"create-box-dir", "write-hostname"}, None, set(), "idle"),
        (ARM, "not done yet", set(), "armed"),
    ),
    "armed": (
        ({"remove-config"}, "action none", set(), "idle"),
        (set(), None, set(), "armed"),
    ),
    "success": (
        ({"remove-config"}, "action none", set(), "idle"),
        ({"remove-config"}, "done (succeeded)", set(), "done"),
    ),
    "failed-below-limit": (
        ({"remove-config"}, "action none", set(), "idle"),
        (set(), None, set(), "failed"),
    ),
    "at-limit": (
        ({"remove-config"}, "action none", set(), "idle"),
        ({"remove-config"}, "attempt limit reached (3/3", set(), "stalled"),
    ),
    "rescue-ready": (
        ({"remove-config"}, "action none", set(), "idle"),
        ({"write-request", "write-config"}, "request changed", set(), "armed"),
    ),
    "box-removed": (
        # The removed box's config goes; the box now in the desired state (action none) gets
        # its directory; the removed box's directory is reported, never deleted.
        (
            {"remove-config", "create-box-dir", "write-hostname"},
            "box removed",
            {"orphaned-box"},
            None,
        ),
        (
            {"remove-config", "create-box-dir", "write-hostname"},
            "box removed",
            {"orphaned-box"},
            None,
        ),
    ),
    "drifted-config": (
        ({"remove-config"}, "action none", set(), "idle"),
        ({"write-config"}, "drift", set(), "armed"),
    ),
    "foreign-config": (
        ({"create-box-dir", "write-hostname"}, None, {"foreign-config"}, "idle"),
        ({"create-box-dir", "write-hostname"}, None, {"blocked"}, "armed"),
    ),
}
RESCUE_READY_RESCUE: Row = (set(), None, set(), "rescue")


def expected(action: str, situation: str) -> Row:
    if situation == "rescue-ready" and action == "rescue":
        return RESCUE_READY_RESCUE
    none_row, armable_row = EXPECT[situation]
    row = none_row if action == "none" else armable_row
    ops, reason, notices, state = row
    if action == "rescue" and state == "armed":
        state = "rescue"
    if action == "restore" and state in ("armed", "failed") and "blocked" not in notices:
        notices = {*notices, "problem"}  # these boxes have no image to restore yet
    return ops, reason, notices, state


@pytest.mark.parametrize("situation", list(SITUATIONS))
@pytest.mark.parametrize("action", ACTIONS)
def test_planner_table(tmp_path: Path, action: str, situation: str) -> None:
    shares = make_shares(tmp_path)
    state = SITUATIONS[situation](tmp_path, shares, action)
    observed = observe(shares)
    plan = make_plan(state, observed)
    ops, reason, notices, status_state = expected(action, situation)

    assert {op.kind for op in plan.operations} == ops, plan.operations
    assert {n.kind for n in plan.notices} == notices
    config_ops = [op for op in plan.operations if op.share == "tftp"]
    if reason is not None:
        assert config_ops and all(reason in op.reason for op in config_ops), config_ops
    for op in plan.operations:
        assert op.reason  # every operation says why
    # Foreign configs are never the subject of an operation.
    foreign = {n for n, c in observed.configs.items() if not c.managed}
    assert not {op.path for op in config_ops} & {f"{PXE_CFG_DIR}/{n}" for n in foreign}
    if status_state is not None:
        [status] = [b for b in box_states(state, observed).boxes if b.ip == IP]
        assert status.state == status_state


def test_every_action_and_situation_is_in_the_table() -> None:
    assert set(EXPECT) == set(SITUATIONS)
