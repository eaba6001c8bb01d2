"""`testboxctl status` in process: the JSON contract and the box states (docs/contract.md)."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.io.shares import Shares
from tests.cli.runner import run_cli as run
from tests.cli.test_reconcile import desired
from tests.lab_builder import add_image, write_result


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    root = tmp_path / "lab"
    assert run("init", "--lab", root).returncode == 0
    return root


def status_json(lab: Path) -> dict[str, Any]:
    done = run("status", "-f", desired(lab), "--json")
    assert done.returncode == 0, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def test_states_follow_results(lab: Path) -> None:
    first = status_json(lab)
    assert [b["state"] for b in first["boxes"]] == ["armed", "armed", "idle"]
    # Not reconciled yet: even the idle box lacks its directory and hostname file.
    assert [b["in_sync"] for b in first["boxes"]] == [False, False, False]
    assert run("reconcile", "-f", desired(lab)).returncode == 0
    assert [b["in_sync"] for b in status_json(lab)["boxes"]] == [True, True, True]

    by_name = {b["name"]: b for b in status_json(lab)["boxes"]}
    w10, lnx = by_name["tb-w10-01"], by_name["tb-lnx-07"]
    for box in by_name.values():
        assert {"name", "ip", "action", "request_id", "state", "images"} <= set(box)
    shares = Shares(tftp=lab / "tftp", backup=lab / "backup")
    write_result(shares, w10["ip"], w10["request_id"], "success", 1, "backup")
    write_result(shares, lnx["ip"], lnx["request_id"], "failure", 1, "restore")
    made = datetime.now(UTC) - timedelta(hours=2)
    image = add_image(shares, w10["ip"], made)

    by_name = {b["name"]: b for b in status_json(lab)["boxes"]}
    assert by_name["tb-w10-01"]["state"] == "done"
    assert by_name["tb-w10-01"]["images"][0]["id"] == image
    assert 7000 < by_name["tb-w10-01"]["newest_backup_age_seconds"] < 7400
    assert by_name["tb-w10-01"]["last_result"]["outcome"] == "success"
    assert by_name["tb-lnx-07"]["state"] == "failed"
    assert by_name["tb-idle-03"]["state"] == "idle"

    write_result(shares, lnx["ip"], lnx["request_id"], "failure", 3, "restore")
    assert {b["name"]: b["state"] for b in status_json(lab)["boxes"]}["tb-lnx-07"] == "stalled"


def test_rescue_state(lab: Path) -> None:
    text = desired(lab).read_text().replace("ip: 10.0.2.17}", "ip: 10.0.2.17, action: rescue}")
    desired(lab).write_text(text)
    assert run("reconcile", "-f", desired(lab)).returncode == 0
    by_name = {b["name"]: b for b in status_json(lab)["boxes"]}
    assert by_name["tb-idle-03"]["state"] == "rescue"


def test_table_and_unmounted_share(lab: Path) -> None:
    done = run("status", "-f", desired(lab))
    assert done.returncode == 0 and "tb-w10-01" in done.stdout and "armed" in done.stdout
    (lab / "backup" / "testbox-backup").unlink()
    failed = run("status", "-f", desired(lab))
    assert failed.returncode == 1 and "testboxctl: error:" in failed.stderr


def test_in_sync_is_false_whenever_reconcile_would_change_the_box(lab: Path) -> None:
    """in_sync comes from the planner: a request.json that reconcile would rewrite is not in
    sync, even though the PXE config is armed for the right request."""
    assert run("reconcile", "-f", desired(lab)).returncode == 0
    request = lab / "backup" / "10.0.2.15" / "request.json"
    request.write_text(request.read_text().replace('"disks"', '"disks" ', 1))
    assert run("reconcile", "--dry-run", "-f", desired(lab)).returncode == 2
    by_name = {b["name"]: b for b in status_json(lab)["boxes"]}
    assert by_name["tb-w10-01"]["in_sync"] is False
    assert by_name["tb-lnx-07"]["in_sync"] is True
