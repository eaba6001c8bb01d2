"""make_plan with schedules and power control: the power-cycle rules of contract §7 as a table.

Real shares on disk (tests.lab_builder), a hand-written `power.json` where a previous run would
have left one, and `now` as an argument: the planner stays pure.
"""

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.core.plan import make_plan
from controller.core.status import box_states
from controller.io.observe import observe
from controller.io.shares import Shares
from schema.layout import POWER_FILE
from schema.plan import Plan
from schema.request import request_id
from tests.lab_builder import (
    SITE,
    T0,
    add_image,
    desired,
    make_shares,
    managed_config,
    write_config,
    write_result,
)

POWER = {"method": "command", "command": ["true", "{name}"], "retry_after": "10m", "max_cycles": 2}
BOX: dict[str, Any] = {"name": "tb1", "ip": "10.0.2.15", "action": "backup", "power": POWER}


def record(shares: Shares, rid: str, *, cycle: int = 1, minutes_ago: int = 1, **extra: Any) -> None:
    doc = {
        "schema_version": 1,
        "request_id": rid,
        "method": "command",
        "cycle": cycle,
        "time": (T0 - timedelta(minutes=minutes_ago)).isoformat(),
        "outcome": "cycled",
        "attempts_seen": 0,
        **extra,
    }
    (shares.backup / "10.0.2.15").mkdir(exist_ok=True)
    (shares.backup / "10.0.2.15" / POWER_FILE).write_text(json.dumps(doc))


def plan(shares: Shares, *boxes: dict[str, Any], site: dict[str, Any] | None = None) -> Plan:
    return make_plan(desired(*boxes, site=site), observe(shares), now=T0)


def cycles(p: Plan) -> list[str]:
    return [op.reason for op in p.operations if op.kind == "power-cycle"]


def rid_of(*boxes: dict[str, Any]) -> str:
    rid = request_id(desired(*boxes).effective_boxes()[0])
    assert rid is not None
    return rid


def test_arming_cycles_once_and_last(tmp_path: Path) -> None:
    shares = make_shares(tmp_path)
    p = plan(shares, BOX)
    assert p.operations[-1].kind == "power-cycle"
    op = p.operations[-1]
    assert op.power is not None and op.power.cycle == 1 and op.power.power.method == "command"
    assert cycles(p) == [
        f"arm: backup request {rid_of(BOX)}; box reboots into maintenance (command)"
    ]


def test_no_power_method_no_cycle(tmp_path: Path) -> None:
    shares = make_shares(tmp_path)
    assert cycles(plan(shares, {**BOX, "power": {"method": "none"}})) == []
    assert cycles(plan(shares, {k: v for k, v in BOX.items() if k != "power"})) == []


def test_defaults_power_applies_and_a_box_replaces_it(tmp_path: Path) -> None:
    shares = make_shares(tmp_path)
    site = {**SITE, "defaults": {**SITE["defaults"], "power": POWER}}
    plain = {"name": "tb1", "ip": "10.0.2.15", "action": "backup"}
    assert len(cycles(plan(shares, plain, site=site))) == 1
    assert cycles(plan(shares, {**plain, "power": {"method": "none"}}, site=site)) == []


def test_cycled_recently_nothing_again(tmp_path: Path) -> None:
    shares = make_shares(tmp_path)
    record(shares, rid_of(BOX), minutes_ago=5)
    assert cycles(plan(shares, BOX)) == []


def test_no_result_after_retry_after_cycles_again_then_a_notice(tmp_path: Path) -> None:
    shares = make_shares(tmp_path)
    rid = rid_of(BOX)
    record(shares, rid, minutes_ago=11)
    (reason,) = cycles(plan(shares, BOX))
    assert reason.startswith("no attempt result 10m after the power cycle at ")
    assert reason.endswith(": cycle 2 of 2")
    record(shares, rid, cycle=2, minutes_ago=11)
    p = plan(shares, BOX)
    assert cycles(p) == []
    (notice,) = [n for n in p.notices if n.kind == "power"]
    assert "2 of 2 power cycles done" in notice.message and "next reboot" in notice.message


def test_a_result_after_the_cycle_means_the_box_acted(tmp_path: Path) -> None:
    shares = make_shares(tmp_path)
    rid = rid_of(BOX)
    record(shares, rid, minutes_ago=60)
    write_result(shares, "10.0.2.15", rid, "failure", attempt=1)
    # Failed attempt 1 of 3: still armed, the box retries by itself; no power cycle.
    p = plan(shares, BOX)
    assert cycles(p) == [] and not [n for n in p.notices if n.kind == "power"]


def test_a_failed_cycle_is_retried_at_once(tmp_path: Path) -> None:
    shares = make_shares(tmp_path)
    record(shares, rid_of(BOX), outcome="unreachable", error="BMC unreachable")
    (reason,) = cycles(plan(shares, BOX))
    assert "failed (BMC unreachable): cycle 2 of 2" in reason


@pytest.mark.parametrize("outcome", ["success", "failure-limit"])
def test_never_cycle_a_done_or_stalled_request(tmp_path: Path, outcome: str) -> None:
    shares = make_shares(tmp_path)
    rid = rid_of(BOX)
    if outcome == "success":
        write_result(shares, "10.0.2.15", rid, "success")
    else:
        write_result(shares, "10.0.2.15", rid, "failure", attempt=3)
    assert cycles(plan(shares, BOX)) == []


def test_never_cycle_a_box_blocked_by_a_foreign_config(tmp_path: Path) -> None:
    shares = make_shares(tmp_path)
    write_config(shares, "0A00020F", "DEFAULT hand-made\n")
    p = plan(shares, BOX)
    assert cycles(p) == [] and [n.kind for n in p.notices] == ["blocked"]


def test_rescue_cycles_once_and_not_when_ready(tmp_path: Path) -> None:
    shares = make_shares(tmp_path)
    rescue = {**BOX, "action": "rescue"}
    assert len(cycles(plan(shares, rescue))) == 1
    rid = rid_of(rescue)
    record(shares, rid, minutes_ago=60)
    write_result(shares, "10.0.2.15", rid, "rescue-ready", action="rescue")
    assert cycles(plan(shares, rescue)) == []


def test_a_damaged_power_record_blocks_power_only(tmp_path: Path) -> None:
    shares = make_shares(tmp_path)
    (shares.backup / "10.0.2.15").mkdir()
    (shares.backup / "10.0.2.15" / POWER_FILE).write_text("{not json")
    p = plan(shares, BOX)
    assert cycles(p) == []
    assert "write-config" in [op.kind for op in p.operations]  # the box is still armed
    assert [n.kind for n in p.notices] == ["power"]


def test_a_request_already_armed_with_its_config_still_gets_its_first_cycle(tmp_path: Path) -> None:
    shares = make_shares(tmp_path)
    name, text = managed_config(desired(BOX), "tb1")
    write_config(shares, name, text)
    assert len(cycles(plan(shares, BOX))) == 1


def test_scheduled_backup_is_armed_cycled_and_shown_in_status(tmp_path: Path) -> None:
    shares = make_shares(tmp_path)
    add_image(shares, "10.0.2.15", T0 - timedelta(days=8))
    box = {"name": "tb1", "ip": "10.0.2.15", "schedule": {"backup_every": "7d"}, "power": POWER}
    p = plan(shares, box)
    writes = [op for op in p.operations if op.kind == "write-request"]
    assert len(writes) == 1 and "scheduled (backup_every 7d)" in writes[0].reason
    assert json.loads(writes[0].content or "")["action"] == "backup-again"
    assert len(cycles(p)) == 1
    status = box_states(desired(box), observe(shares, now=T0))
    (entry,) = status.boxes
    assert entry.state == "armed" and entry.action == "backup-again"
    assert entry.next_backup_due == T0 - timedelta(days=1)
    data = json.loads(status.model_dump_json())
    assert data["boxes"][0]["next_backup_due"] == (T0 - timedelta(days=1)).isoformat().replace(
        "+00:00", "Z"
    )
