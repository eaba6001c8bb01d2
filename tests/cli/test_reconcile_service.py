"""The whole loop without QEMU: testboxctl arms, the real on-box service acts, testboxctl sees it.

`testbox-maintenance` runs as a process with the APPEND line of the config testboxctl wrote as
its kernel command line and disk files standing in for /dev/sdX. What is checked is SPEC §3 as
an operator sees it: backup → done (config gone, image listed, in sync); restore of that image
with a new request token → the disk gets the bytes back; a failing request retries until
max_attempts, then reconcile disarms it and status says stalled.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from schema.layout import PXE_CFG_DIR
from tests.cli.test_reconcile import run

pytestmark = pytest.mark.skipif(
    shutil.which("testbox-maintenance") is None, reason="testbox-maintenance not installed"
)


def service(lab: Path, config: str, ip: str, *disks: str) -> subprocess.CompletedProcess[str]:
    text = (lab / "tftp" / PXE_CFG_DIR / config).read_text()
    append = next(line for line in text.splitlines() if line.strip().startswith("APPEND"))
    args = ["--cmdline", append.strip().removeprefix("APPEND "), "--tftp-root", lab / "tftp"]
    args += ["--backup-root", lab / "backup", "--ip", ip, "--no-reboot"]
    for disk in disks:
        args += ["--disk", disk]
    return subprocess.run(
        ["testbox-maintenance", *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def boxes(lab: Path) -> dict[str, dict[str, Any]]:
    done = run("status", "-f", lab / "desired.yaml", "--json")
    assert done.returncode == 0, done.stderr
    return {b["name"]: b for b in json.loads(done.stdout)["boxes"]}


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    root = tmp_path / "lab"
    assert run("init", "--lab", root).returncode == 0
    return root


def test_backup_then_restore_through_the_service(lab: Path) -> None:
    desired = lab / "desired.yaml"
    disk = lab / "sda.img"
    disk.write_bytes(os.urandom(3 * 1024 * 1024) + bytes(5 * 1024 * 1024))
    original = disk.read_bytes()
    assert run("reconcile", "-f", desired).returncode == 0

    backed_up = service(lab, "0A00020F", "10.0.2.15", f"sda={disk}")
    assert backed_up.returncode == 0, backed_up.stdout + backed_up.stderr
    # The service removed the config on success; the plan agrees: done, nothing to do.
    assert run("reconcile", "-f", desired, "--dry-run").returncode == 0
    w10 = boxes(lab)["tb-w10-01"]
    assert w10["state"] == "done" and len(w10["images"]) == 1

    # Restore the image onto a scribbled disk: a new request (token), armed, done by the box.
    disk.write_bytes(bytes(len(original)))
    text = desired.read_text().replace(
        "{name: tb-w10-01, ip: 10.0.2.15, action: backup}",
        '{name: tb-w10-01, ip: 10.0.2.15, action: restore, request: "T-1"}',
    )
    desired.write_text(text)
    assert run("reconcile", "-f", desired).returncode == 0
    assert boxes(lab)["tb-w10-01"]["state"] == "armed"
    restored = service(lab, "0A00020F", "10.0.2.15", f"sda={disk}")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert disk.read_bytes() == original
    assert boxes(lab)["tb-w10-01"]["state"] == "done"
    assert run("reconcile", "-f", desired).returncode == 0
    assert not (lab / "tftp" / PXE_CFG_DIR / "0A00020F").exists()


def test_failures_retry_until_the_limit_then_disarm(lab: Path) -> None:
    desired = lab / "desired.yaml"
    assert run("reconcile", "-f", desired).returncode == 0
    sda, sdb = lab / "sda.img", lab / "sdb.img"
    for path in (sda, sdb):
        path.write_bytes(bytes(1024 * 1024))
    # tb-lnx-07 restores "latest" but has no image: every attempt fails.
    for attempt in (1, 2, 3):
        failed = service(lab, "0A000210", "10.0.2.16", f"sda={sda}", f"sdb={sdb}")
        assert failed.returncode == 1
        expected = "failed" if attempt < 3 else "stalled"
        assert boxes(lab)["tb-lnx-07"]["state"] == expected
        if attempt < 3:  # below the limit the plan keeps the box armed
            assert (lab / "tftp" / PXE_CFG_DIR / "0A000210").exists()
    dry = run("reconcile", "-f", desired, "--dry-run")
    assert dry.returncode == 2 and "attempt limit reached (3/3" in dry.stdout
    assert run("reconcile", "-f", desired).returncode == 0
    assert not (lab / "tftp" / PXE_CFG_DIR / "0A000210").exists()
    assert run("reconcile", "-f", desired, "--dry-run").returncode == 0
