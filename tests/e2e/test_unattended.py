"""The whole unattended loop in QEMU (issue 9): nobody touches the box after powering it on.

The harness starts QEMU once, lets it boot its own disk (the boot sector halts there, as an OS
would idle), and never touches it again. The box's `power:` is a `command` driver that resets
the VM through QEMU's QMP socket (tests/e2e/qmp_reset.py), as ipmitool would reset a real box.
Commit a backup to the desired file → `reconcile` → the VM resets, boots maintenance, backs up,
reboots into its own disk → `reconcile --dry-run` exits 0 and status says done. Then the same for
a scheduled backup, with no action in the desired file at all.
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import LOCAL_DISK_MARKER, Box, make_disk, strip_ansi
from tests.e2e.lab import E2ELab, desired_text

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1200)]

MiB = 1 << 20
ROOT = Path(__file__).resolve().parents[2]
BOOT_TIMEOUT = 400.0  # reset → PXE → maintenance → backup → reboot → own disk, under TCG


class RunningBox:
    """QEMU started once: reboots stay inside QEMU (no -no-reboot), QMP on a unix socket."""

    def __init__(self, box: Box, log: Path, qmp: Path) -> None:
        argv = [a for a in box.command() if a != "-no-reboot"]
        i = argv.index("isa-debug-exit,iobase=0xf4,iosize=0x04")
        del argv[i - 1 : i + 1]  # the boot sector then halts instead of ending QEMU
        argv += ["-qmp", f"unix:{qmp},server=on,wait=off"]
        self.log = log
        self.qmp = qmp
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def serial(self) -> str:
        return strip_ansi(self.log.read_bytes().decode("utf-8", "replace"))

    def local_boots(self) -> int:
        return self.serial().count(LOCAL_DISK_MARKER)

    def wait_local_boots(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.local_boots() < count:
            assert self.process.poll() is None, f"QEMU ended: {self.log}"
            assert time.monotonic() < deadline, f"no local boot #{count}: {self.log}"
            time.sleep(1)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def running(lab: E2ELab, tmp_path: Path) -> Iterator[RunningBox]:
    disk = tmp_path / "vda.img"
    make_disk(disk, 16 * MiB, seed=3)
    vm = RunningBox(lab.box(disk), lab.log_dir / "unattended.serial.log", tmp_path / "qmp.sock")
    try:
        vm.wait_local_boots(1, 120)  # powered on once: no config, so its own disk
        yield vm
    finally:
        vm.stop()


def want(lab: E2ELab, vm: RunningBox, action: str, extra: str = "") -> None:
    power = (
        f", power: {{method: command, command: [{sys.executable}, -m, tests.e2e.qmp_reset, "
        f"{vm.qmp}], timeout: 20s}}"
    )
    lab.desired.write_text(
        desired_text(
            action,
            max_attempts=3,
            extra=power + extra,
            transport=lab.transport,
            firmware=lab.firmware,
        )
    )


def reconcile(lab: E2ELab) -> str:
    # The power command runs from the project root (tests.e2e.qmp_reset is importable there).
    done = subprocess.run(
        [*lab.testboxctl, "reconcile", "-f", str(lab.desired)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def assert_done(lab: E2ELab) -> None:
    dry = lab.reconcile("--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert lab.status()["state"] in ("done", "idle")


@pytest.mark.parametrize("lab", ["9p"], indirect=True)
def test_backup_and_scheduled_backup_with_nobody_touching_the_box(
    lab: E2ELab, running: RunningBox
) -> None:
    want(lab, running, "backup")
    out = reconcile(lab)
    assert "power-cycle tb-e2e-01 via command" in out
    running.wait_local_boots(2, BOOT_TIMEOUT)  # reset → maintenance → backup → own disk
    assert "testbox-request=" in running.serial()
    assert_done(lab)
    box = lab.status()
    assert box["state"] == "done" and len(box["images"]) == 1
    assert box["power"]["outcome"] == "cycled"

    # No action at all: the schedule makes the next backup, and power control runs it.
    want(lab, running, "none", ", schedule: {backup_every: 60s}")
    box = lab.status()
    assert box["state"] == "idle" and box["next_backup_due"] is not None
    while lab.status()["state"] != "armed":  # due 60 s after the image
        time.sleep(2)
    out = reconcile(lab)
    assert "scheduled (backup_every 60s)" in out and "power-cycle" in out
    running.wait_local_boots(3, BOOT_TIMEOUT)
    assert_done(lab)
    box = lab.status()
    assert len(box["images"]) == 2 and box["last_result"]["outcome"] == "success"
