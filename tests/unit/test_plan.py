"""make_plan beyond the table: purity, the empty-desired guard, ordering, retention, MAC names."""

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.core.plan import ip_of_config_name, make_plan
from controller.errors import ControllerError
from controller.io.observe import observe
from schema.layout import PXE_CFG_DIR
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

BOXES: list[dict[str, Any]] = [
    {"name": "tb1", "ip": "10.0.2.15", "action": "backup"},
    {"name": "tb2", "ip": "10.0.2.16", "action": "restore", "disks": ["sda", "sdb"]},
]


def test_pure_same_inputs_same_plan_and_no_share_access(tmp_path: Path) -> None:
    shares = make_shares(tmp_path)
    observed = observe(shares)
    first = make_plan(desired(*BOXES), observed)
    shutil.rmtree(tmp_path)  # the planner never looks at the shares
    assert make_plan(desired(*BOXES), observed) == first


def test_empty_desired_state_refused_while_managed_configs_exist(tmp_path: Path) -> None:
    shares = make_shares(tmp_path)
    name, text = managed_config(desired(*BOXES), "tb1")
    write_config(shares, name, text)
    with pytest.raises(ControllerError, match="--allow-empty"):
        make_plan(desired(), observe(shares))
    plan = make_plan(desired(), observe(shares), allow_empty=True)
    assert [op.kind for op in plan.operations] == ["remove-config"]
    # Without managed configs an empty desired state is simply in sync.
    assert make_plan(desired(), observe(make_shares(tmp_path / "fresh"))).empty


def test_request_files_come_before_the_config_and_removals_first(tmp_path: Path) -> None:
    shares = make_shares(tmp_path)
    # A config of a box no longer declared: its removal runs before everything else.
    write_config(shares, "0A000263", managed_config(desired(*BOXES), "tb1")[1])
    plan = make_plan(desired(*BOXES), observe(shares))
    kinds = [(op.ip, op.kind) for op in plan.operations]
    assert kinds[0] == ("10.0.2.99", "remove-config")
    for ip in ("10.0.2.15", "10.0.2.16"):
        mine = [k for i, k in kinds if i == ip]
        assert mine == [
            "create-box-dir",
            "write-hostname",
            "write-request",
            "write-disk-list",
            "record-arm",
            "write-config",
        ]


def test_armed_restore_target_is_never_pruned(tmp_path: Path) -> None:
    shares = make_shares(tmp_path)
    ids = [add_image(shares, "10.0.2.16", T0 - timedelta(days=d), f"00000{d}") for d in range(4)]
    oldest = ids[-1]
    box = {**BOXES[1], "image": oldest, "retention": {"keep_last": 1}}
    plan = make_plan(desired(box), observe(shares))
    pruned = [op.image_id or "" for op in plan.operations if op.kind == "prune-image"]
    assert sorted(pruned) == sorted(ids[1:3])  # newest kept by the rule, oldest protected
    assert all(op.reason == "retention (keep_last=1)" for op in plan.operations if op.image_id)


def test_retention_only_when_images_exist_and_never_for_orphans(tmp_path: Path) -> None:
    shares = make_shares(tmp_path)
    for d in range(5):
        add_image(shares, "10.0.2.77", T0 - timedelta(days=d), f"00000{d}")
    plan = make_plan(desired({**BOXES[0], "retention": {"keep_last": 1}}), observe(shares))
    assert not [op for op in plan.operations if op.kind == "prune-image"]
    [orphan] = [n for n in plan.notices if n.kind == "orphaned-box"]
    assert orphan.ip == "10.0.2.77" and "5 image(s)" in orphan.message


def test_mac_named_managed_config_is_cleaned_up_foreign_one_reported(tmp_path: Path) -> None:
    shares = make_shares(tmp_path)
    box = {"name": "tb1", "ip": "10.0.2.15", "mac": "52:54:00:AA:BB:CC", "action": "none"}
    write_config(shares, "01-52-54-00-aa-bb-cc", managed_config(desired(*BOXES), "tb1")[1])
    plan = make_plan(desired(box), observe(shares))
    assert [op.path for op in plan.operations if op.kind == "remove-config"] == [
        f"{PXE_CFG_DIR}/01-52-54-00-aa-bb-cc"
    ]
    write_config(shares, "01-52-54-00-aa-bb-cc", "DEFAULT mine\n")
    plan = make_plan(desired(box), observe(shares))
    assert not [op for op in plan.operations if op.kind == "remove-config"]
    assert [n.kind for n in plan.notices] == ["foreign-config"]


def test_site_change_rewrites_armed_configs_as_drift(tmp_path: Path) -> None:
    from controller.io.apply import apply_plan

    shares = make_shares(tmp_path)
    apply_plan(make_plan(desired(*BOXES), observe(shares)), shares)
    site = {**SITE, "maintenance": {**SITE["maintenance"], "nfs_server": "10.0.2.3"}}
    plan = make_plan(desired(*BOXES, site=site), observe(shares))
    assert {op.kind for op in plan.operations} == {"write-config"}
    assert all("drift" in op.reason and op.old_content for op in plan.operations)


def test_firmware_change_rewrites_the_config_as_drift_same_request(tmp_path: Path) -> None:
    from controller.io.apply import apply_plan

    shares = make_shares(tmp_path)
    apply_plan(make_plan(desired(BOXES[0]), observe(shares)), shares)
    before = observe(shares).configs["0A00020F"]
    plan = make_plan(desired({**BOXES[0], "firmware": "uefi"}), observe(shares))
    (op,) = plan.operations  # same request: request.json and disk list stay
    assert (op.kind, op.path) == ("write-config", f"{PXE_CFG_DIR}/0A00020F")
    assert "drift" in op.reason and op.old_content == before.content
    assert op.content is not None and "PATH efi64" in op.content
    apply_plan(plan, shares)
    assert observe(shares).configs["0A00020F"].request_id == before.request_id
    assert make_plan(desired({**BOXES[0], "firmware": "uefi"}), observe(shares)).empty


def test_failure_retry_keeps_files_and_success_disarms(tmp_path: Path) -> None:
    from controller.io.apply import apply_plan

    shares = make_shares(tmp_path)
    state = desired(BOXES[0])
    apply_plan(make_plan(state, observe(shares)), shares)
    assert make_plan(state, observe(shares)).empty
    request_id = observe(shares).configs["0A00020F"].request_id
    assert request_id is not None
    write_result(shares, "10.0.2.15", request_id, "failure", 2)
    assert make_plan(state, observe(shares)).empty  # 2 < 3: the box retries on its own
    write_result(shares, "10.0.2.15", request_id, "success", 3)
    assert [op.kind for op in make_plan(state, observe(shares)).operations] == ["remove-config"]


@pytest.mark.parametrize(
    ("name", "ip"),
    [("0A00020F", "10.0.2.15"), ("C0A80001", "192.168.0.1"), ("default", None), ("0A0002", None)],
)
def test_ip_of_config_name(name: str, ip: str | None) -> None:
    assert ip_of_config_name(name) == ip
