"""The planner table: every desired action by every observed situation of one box.

The planner is pure, so its table needs no shares: each situation is an `Observed` value built
here, the box "armed" by applying the planner's own plan to the observation in memory
(`applied`). Each case plans and checks the operation kinds, the reason of the config change,
the notices, and the state `status` reports. The situations are set up with the box armed for
its desired action (for action `none`: armed for a backup, i.e. the operator has just set the
box back to none). What apply and observe do on real shares is tested in test_apply.py,
test_observe.py and the property test tests/property/test_converge.py.
"""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from controller.core.plan import make_plan
from controller.core.status import box_states
from schema.desired import DesiredState
from schema.layout import PXE_CFG_DIR, hex_ip
from schema.observed import Observed, ObservedBox, ObservedConfig, ObservedResult
from schema.plan import Plan
from schema.request import request_id
from tests.lab_builder import T0, desired, managed_config

IP = "10.0.2.15"
OTHER = {"name": "tb-other", "ip": "10.0.2.99"}
ACTIONS = ["none", "backup", "backup-again", "restore", "refresh-info", "rescue"]
ARM = {
    "create-box-dir",
    "write-hostname",
    "write-request",
    "write-disk-list",
    "record-arm",
    "write-config",
}


def box(action: str) -> dict[str, Any]:
    return {"name": "tb1", "ip": IP, "action": action}


def empty() -> Observed:
    return Observed(tftp_root="/tftp", backup_root="/backup", observed_at=T0, fingerprint="f")


def applied(plan: Plan, observed: Observed) -> Observed:
    """`observed` after `plan` was applied: what observe would see next (pure, in memory)."""
    configs = dict(observed.configs)
    boxes = dict(observed.boxes)
    for op in plan.operations:
        ip = op.path.split("/")[0]
        seen = boxes.get(ip)
        if op.kind == "remove-config":
            configs.pop(op.path.removeprefix(f"{PXE_CFG_DIR}/"), None)
        elif op.kind == "write-config":
            name = op.path.removeprefix(f"{PXE_CFG_DIR}/")
            content = op.content or ""
            configs[name] = ObservedConfig(
                name=name, managed=True, request_id=op.request_id, content=content
            )
        elif op.kind == "create-box-dir":
            boxes[ip] = ObservedBox(ip=ip)
        elif seen is not None and op.kind == "write-hostname":
            boxes[ip] = seen.model_copy(update={"files": seen.files | {op.path.split("/")[1]}})
        elif seen is not None and op.kind == "write-request":
            boxes[ip] = seen.model_copy(update={"request_json": op.content})
        elif seen is not None and op.kind == "write-disk-list":
            boxes[ip] = seen.model_copy(update={"disk_list": op.content})
    return observed.model_copy(update={"configs": configs, "boxes": boxes})


def arm(state: DesiredState, observed: Observed) -> Observed:
    """The observation once the box is armed exactly as testboxctl arms it."""
    return applied(make_plan(state, observed), observed)


def rid_of(state: DesiredState) -> str:
    rid = request_id(state.effective_boxes()[0])
    assert rid is not None
    return rid


Situation = Callable[[str], tuple[DesiredState, Observed]]


def _armed_for(action: str) -> tuple[DesiredState, Observed]:
    state = desired(box(action if action != "none" else "backup"))
    return state, arm(state, empty())


def with_result(observed: Observed, rid: str, outcome: str, attempt: int) -> Observed:
    seen = observed.boxes[IP]
    result = ObservedResult(
        request_id=rid,
        outcome=outcome,
        attempt=attempt,
        finished=T0 + timedelta(minutes=attempt),
        error="disk read error" if outcome == "failure" else None,
    )
    boxes = {**observed.boxes, IP: seen.model_copy(update={"results": {rid: result}})}
    return observed.model_copy(update={"boxes": boxes})


# Situation builders: desired action -> (the desired state to plan, the observation).
def s_nothing(action: str) -> tuple[DesiredState, Observed]:
    return desired(box(action)), empty()


def s_armed(action: str) -> tuple[DesiredState, Observed]:
    return desired(box(action)), _armed_for(action)[1]


def _with_result(outcome: str, attempt: int) -> Situation:
    def build(action: str) -> tuple[DesiredState, Observed]:
        armed, observed = _armed_for(action)
        return desired(box(action)), with_result(observed, rid_of(armed), outcome, attempt)

    return build


def s_rescue_ready(action: str) -> tuple[DesiredState, Observed]:
    armed = desired(box("rescue"))
    observed = with_result(arm(armed, empty()), rid_of(armed), "rescue-ready", 1)
    return desired(box(action)), observed


def s_box_removed(action: str) -> tuple[DesiredState, Observed]:
    return desired(OTHER), _armed_for(action)[1]


def _config(observed: Observed, name: str, content: str, managed: bool) -> Observed:
    rid = observed.configs[name].request_id if name in observed.configs else None
    cfg = ObservedConfig(
        name=name, managed=managed, request_id=rid if managed else None, content=content
    )
    return observed.model_copy(update={"configs": {**observed.configs, name: cfg}})


def s_drifted(action: str) -> tuple[DesiredState, Observed]:
    armed, observed = _armed_for(action)
    name, content = managed_config(armed, "tb1")
    drifted = content.replace("LOCALBOOT 0", "LOCALBOOT 0\nMENU HIDDEN")
    return desired(box(action)), _config(observed, name, drifted, managed=True)


def s_foreign(action: str) -> tuple[DesiredState, Observed]:
    foreign = "DEFAULT hand-made\nLABEL hand-made\n  LOCALBOOT 0\n"
    return desired(box(action)), _config(empty(), hex_ip(IP), foreign, managed=False)


SITUATIONS: dict[str, Situation] = {
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
        ({"write-request", "record-arm", "write-config"}, "request changed", set(), "armed"),
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
def test_planner_table(action: str, situation: str) -> None:
    state, observed = SITUATIONS[situation](action)
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
        # status's in_sync is the planner's: no operation for the box.
        assert status.in_sync == (not [op for op in plan.operations if op.ip == IP])


def test_applying_the_plan_in_memory_converges() -> None:
    """The table's `applied` is faithful enough: a plan applied leaves nothing to plan."""
    for action in ACTIONS:
        state = desired(box(action))
        assert make_plan(state, arm(state, empty())).empty


def test_every_action_and_situation_is_in_the_table() -> None:
    assert set(EXPECT) == set(SITUATIONS)
