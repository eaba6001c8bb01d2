"""apply_plan: runs the plan in order, atomically, idempotently, one log line per change."""

import json
from pathlib import Path

import pytest

from controller.core.plan import make_plan
from controller.io.apply import ApplyFailed, apply_plan
from controller.io.observe import observe
from schema.layout import GLOBAL_LOG, PXE_CFG_DIR
from tests.lab_builder import T0, add_image, desired, make_shares, snapshot, write_result

BOX = {"name": "tb1", "ip": "10.0.2.15", "action": "backup"}


def test_arms_a_box_with_world_readable_files_and_one_log_line_each(tmp_path: Path) -> None:
    shares = make_shares(tmp_path)
    plan = make_plan(desired(BOX), observe(shares))
    report = apply_plan(plan, shares)
    assert len(report.applied) == 6
    box = shares.backup / "10.0.2.15"
    config = shares.tftp / PXE_CFG_DIR / "0A00020F"
    for path in (
        config,
        box / "request.json",
        box / "disk-devices.lst",
        box / "tb1",
        box / "armed.json",
    ):
        assert path.stat().st_mode & 0o777 == 0o644
    request = json.loads((box / "request.json").read_text())
    assert request["action"] == "backup" and f"testbox-request={request['request_id']}" in (
        config.read_text()
    )
    log = (shares.backup / GLOBAL_LOG).read_text().splitlines()
    assert len(log) == 6
    assert log[-1].endswith(
        f"wrote tftp:{PXE_CFG_DIR}/0A00020F (arm: backup request "
        f"{request['request_id']} not done yet) [revision unknown]"
    )
    assert ": 10.0.2.15: info: testboxctl: " in log[0]


def test_applying_twice_changes_nothing(tmp_path: Path) -> None:
    shares = make_shares(tmp_path)
    plan = make_plan(desired(BOX), observe(shares))
    apply_plan(plan, shares)
    before = snapshot(shares.tftp, shares.backup)
    report = apply_plan(plan, shares)
    assert report.applied == [] and len(report.unchanged) == 6
    assert snapshot(shares.tftp, shares.backup) == before


def test_disarm_removes_config_first_and_prunes_last(tmp_path: Path) -> None:
    shares = make_shares(tmp_path)
    apply_plan(make_plan(desired(BOX), observe(shares)), shares)
    rid = json.loads((shares.backup / "10.0.2.15" / "request.json").read_text())["request_id"]
    write_result(shares, "10.0.2.15", rid, "success")
    for day in range(4):
        add_image(shares, "10.0.2.15", T0.replace(day=20 + day), f"00000{day}")
    plan = make_plan(desired(BOX), observe(shares))
    kinds = [op.kind for op in plan.operations]
    assert kinds == ["remove-config", "prune-image", "prune-image"]  # keep_last 2
    apply_plan(plan, shares)
    assert not (shares.tftp / PXE_CFG_DIR / "0A00020F").exists()
    assert [i.id for i in observe(shares).boxes["10.0.2.15"].images] == [
        "20261122T120000Z-000002",
        "20261123T120000Z-000003",
    ]


def test_a_failed_box_stops_that_box_only_and_says_what_was_done(tmp_path: Path) -> None:
    shares = make_shares(tmp_path)
    other = {"name": "tb2", "ip": "10.0.2.16", "action": "backup"}
    plan = make_plan(desired(BOX, other), observe(shares))
    (shares.backup / "10.0.2.15").write_text("a file where the box directory belongs")
    with pytest.raises(ApplyFailed) as caught:
        apply_plan(plan, shares)
    lines = caught.value.message.splitlines()
    assert lines[0].startswith("create-box-dir backup:10.0.2.15 failed: ")
    assert "exists and is not a directory" in lines[0]
    assert lines[-1].startswith("6 of 12 changes are in place, 5 skipped")
    assert not (shares.tftp / PXE_CFG_DIR / "0A00020F").exists()  # nothing after the failure
    assert (shares.tftp / PXE_CFG_DIR / "0A000210").exists()  # the other box is armed


def test_long_host_name_and_a_log_link_do_not_stop_apply(tmp_path: Path) -> None:
    """A valid 253-character host name fits the temp name; a linked log is a warning."""
    shares = make_shares(tmp_path)
    name = ".".join(["a" * 63] * 3 + ["b" * 61])
    outside = tmp_path / "outside.log"
    outside.write_text("")
    (shares.backup / GLOBAL_LOG).symlink_to(outside)
    report = apply_plan(make_plan(desired({**BOX, "name": name}), observe(shares)), shares)
    assert (shares.backup / "10.0.2.15" / name).is_file()
    assert outside.read_text() == ""
    assert report.warnings == [
        f"{GLOBAL_LOG}: {shares.backup / GLOBAL_LOG}: is a symbolic link (never followed); "
        "changes not logged there"
    ]


@pytest.mark.parametrize("path", ["../etc/passwd", "/etc/passwd", "10.0.2.15/../../x", "a//b", ""])
def test_a_saved_plan_cannot_point_outside_its_share(path: str) -> None:
    from pydantic import ValidationError

    from schema.plan import Operation

    with pytest.raises(ValidationError, match="inside the share"):
        Operation(kind="write-config", share="tftp", path=path, reason="x", content="")


def test_config_changed_after_observing_is_left_alone(tmp_path: Path) -> None:
    """The service removes its config on success without the lock: never re-create it."""
    shares = make_shares(tmp_path)
    state = desired(BOX)
    apply_plan(make_plan(state, observe(shares)), shares)
    config = shares.tftp / PXE_CFG_DIR / "0A00020F"
    config.write_text(config.read_text() + "MENU HIDDEN\n")  # drift: the plan rewrites it
    plan = make_plan(state, observe(shares))
    assert [op.kind for op in plan.operations] == ["write-config"]
    config.unlink()  # ...but meanwhile the box succeeded and removed its config
    report = apply_plan(plan, shares)
    assert report.conflicts == plan.operations and report.applied == []
    assert not config.exists()
    # A hand edit between plan and apply is not overwritten either.
    config.write_text("DEFAULT edited\n")
    assert apply_plan(plan, shares).conflicts == plan.operations
    assert config.read_text() == "DEFAULT edited\n"
