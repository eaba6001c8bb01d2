"""A boot the service must not act on: exit 1 with the reason, no disk written, no result.

Each case arms a restore (the action that writes the disk) and then breaks one precondition.
"""

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from schema.layout import BACKUP_MARKER, PXELINUX_BOOTFILE, REQUEST_FILE
from tests.service.lab import BoxLab, make_disk


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def share_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def no_backup_marker(lab: BoxLab, append: str) -> str:
    (lab.backup / BACKUP_MARKER).unlink()
    return append


def no_pxelinux(lab: BoxLab, append: str) -> str:
    (lab.tftp / PXELINUX_BOOTFILE).unlink()
    return append


def no_request_file(lab: BoxLab, append: str) -> str:
    (lab.box_dir / REQUEST_FILE).unlink()
    return append


def other_request_id(lab: BoxLab, append: str) -> str:
    rid = lab.request("restore").request_id
    return append.replace(rid, "0123456789ab")


def broken_request_file(lab: BoxLab, append: str) -> str:
    path = lab.box_dir / REQUEST_FILE
    path.write_text(path.read_text().replace('"max_attempts": 3', '"max_attempts": "three"'))
    return append


def no_action(lab: BoxLab, append: str) -> str:
    return " ".join(w for w in append.split() if not w.startswith("testbox-action-"))


def unknown_action(lab: BoxLab, append: str) -> str:
    return append.replace("testbox-action-restore", "testbox-action-format-c")


CASES: list[tuple[str, Callable[[BoxLab, str], str], str]] = [
    ("backup share unmounted", no_backup_marker, "backup share not mounted"),
    ("tftp share unmounted", no_pxelinux, "TFTP share not mounted"),
    ("request.json missing", no_request_file, "request.json: missing"),
    ("request id mismatch", other_request_id, "does not match this boot's request"),
    ("request.json invalid", broken_request_file, "request.json: max_attempts"),
    ("no action on cmdline", no_action, "no testbox-action-<action>"),
    ("unknown action", unknown_action, "unknown action 'format-c'"),
]


@pytest.mark.parametrize(
    ("breakage", "reason"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES]
)
def test_refused_boot_changes_nothing(
    lab: BoxLab, breakage: Callable[[BoxLab, str], str], reason: str
) -> None:
    request = lab.request("restore")
    append = lab.arm(request)
    disk = make_disk(lab.root / "sda.img", 1 << 20)
    before = digest(disk)
    cmdline = breakage(lab, append)
    config_text = lab.config.read_text()
    run = lab.run(cmdline, disks={"sda": disk})
    assert run.code == 1
    assert reason in run.stderr
    assert digest(disk) == before
    assert not (lab.box_dir / "results").exists()
    assert lab.config.read_text() == config_text
    assert not (lab.backup / "store").exists()


def test_unmounted_backup_share_gets_no_log_either(lab: BoxLab) -> None:
    """An empty mount point stays empty: no maintenance.log written into it."""
    append = lab.arm(lab.request("backup"))
    (lab.backup / BACKUP_MARKER).unlink()
    before = share_files(lab.backup)
    run = lab.run(append, disks={"sda": make_disk(lab.root / "sda.img", 1 << 16)})
    assert run.code == 1
    assert share_files(lab.backup) == before


@pytest.mark.slow
def test_wrong_ip_is_refused_and_logged_globally(lab: BoxLab) -> None:
    append = lab.arm(lab.request("restore"))
    disk = make_disk(lab.root / "sda.img", 1 << 20)
    before = digest(disk)
    run = lab.run(append, disks={"sda": disk}, ip="10.0.2.99")
    assert run.code == 1
    assert "wrong IP" in run.stderr and "0A000263" in run.stderr
    assert digest(disk) == before
    assert not (lab.backup / "10.0.2.99").exists()  # no box directory for an unknown box
    assert "10.0.2.99: error: wrong IP" in lab.global_log()
    assert lab.config.exists()


@pytest.mark.slow
def test_mismatched_request_is_logged_in_both_logs(lab: BoxLab) -> None:
    request = lab.request("restore")
    append = lab.arm(request).replace(request.request_id, "0123456789ab")
    run = lab.run(append, disks={"sda": make_disk(lab.root / "sda.img", 1 << 16)})
    assert run.code == 1
    for log in (lab.box_log(), lab.global_log()):
        assert f"{lab.ip}: error: " in log
        assert "does not match this boot's request 0123456789ab" in log


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--disk", "sda="], "expected NAME=PATH"),
        (["--disk", "loop0=/tmp/x"], "not a whole-disk name"),
        (["--retry-pause", "-1"], "must be zero or more seconds"),
        (["--ip", "10.0.2"], "not a dotted-decimal IPv4 address"),
    ],
)
def test_usage_errors_exit_1(lab: BoxLab, args: list[str], message: str) -> None:
    run = lab.run("testbox-action-backup", *args)
    assert run.code == 1
    assert message in run.stderr


def test_unmapped_disk_is_refused_when_disks_are_mapped(lab: BoxLab) -> None:
    """With --disk, a disk of the list without a mapping is an error, never /dev/<name>."""
    append = lab.arm(lab.request("restore", disks=["sda", "sdb"]))
    run = lab.run(append, disks={"sda": make_disk(lab.root / "sda.img", 1 << 16)})
    assert run.code == 1
    assert "disk sdb" in run.stderr and "no --disk mapping" in run.stderr
    result = lab.result(lab.request("restore", disks=["sda", "sdb"]))
    assert result.outcome == "failure" and result.attempt == 1
    assert lab.config.exists()
