"""The seed's whole boot path, for real: SeaBIOS PXE → PXELINUX picks the box's config (or
`default`) → the maintenance kernel and root → the `testbox-maintenance` unit → the box's own
disk. Each scenario is driven only through the desired file and `testboxctl`; QEMU is the box.
"""

import hashlib
import random
from pathlib import Path
from typing import Any

import pytest

from onbox.imaging.backup import backup_disks
from onbox.imaging.restore import restore_image
from onbox.store import open_store
from tests.e2e.harness import SERVICE_OUTPUT, BootResult, Box, make_disk
from tests.e2e.lab import BOX_IP, E2ELab
from tests.e2e.timing import MAX_SCALE, scaled

# The per-boot limits below scale with the machine's load (tests/e2e/timing.py); this one is
# only the backstop for a test as a whole, at the largest scale.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300 * MAX_SCALE)]

MiB = 1 << 20
DISK_SIZE = 32 * MiB
# Quiet-machine limits with ~3x margin (a maintenance boot of this scenario: ~45 s to power-off,
# the service starts ~30 s after power-on; a local boot ~8 s), times timing.scale().
MAINTENANCE_TIMEOUT = 150.0  # one maintenance boot, PXE to power-off, under TCG
LOCAL_TIMEOUT = 40.0  # PXELINUX's `default` → LOCALBOOT 0 → the disk's boot sector
BROKEN_TIMEOUT = 30.0  # a box whose disk no longer boots: SeaBIOS gives up


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def scramble(path: Path, seed: int) -> None:
    """Overwrite the boot sector and every other MiB with noise: the box no longer boots."""
    rng = random.Random(seed)
    with path.open("r+b") as f:
        for offset in range(0, path.stat().st_size, 2 * MiB):
            f.seek(offset)
            f.write(rng.randbytes(MiB))


def arm(lab: E2ELab, action: str, **kw: Any) -> dict[str, Any]:
    lab.want(action, **kw)
    done = lab.reconcile()
    assert done.returncode == 0, done.stdout + done.stderr
    assert lab.config.exists()
    box = lab.status()
    assert box["state"] == "armed", box
    return box


def assert_maintenance_boot(boot: BootResult, request_id: str) -> None:
    assert boot.booted_maintenance, f"no maintenance kernel in {boot.report()}"
    # PXELINUX took the box's config (0A00020F): its APPEND line is the kernel command line.
    assert f"testbox-request={request_id}" in boot.serial, boot.report()
    assert SERVICE_OUTPUT in boot.serial, f"the service never ran: {boot.report()}"


def assert_local_boot(box: Box) -> BootResult:
    boot = box.boot(timeout=scaled(LOCAL_TIMEOUT))
    assert boot.booted_local_disk, f"the box did not boot its own disk: {boot.report()}"
    assert not boot.booted_maintenance, f"maintenance booted again: {boot.report()}"
    return boot


def assert_done(lab: E2ELab) -> dict[str, Any]:
    dry = lab.reconcile("--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert not lab.config.exists()
    box = lab.status()
    assert box["state"] == "done", box
    return box


# NFS: the production path. 9p: the root's alternative transport for VMs without an NFS server.
@pytest.mark.parametrize("lab", ["nfs", "9p"], indirect=True)
def test_backup_then_the_box_boots_its_own_disk(lab: E2ELab, tmp_path: Path) -> None:
    disk = tmp_path / "vda.img"
    make_disk(disk, DISK_SIZE, seed=1)
    original = sha(disk)
    request_id = arm(lab, "backup")["request_id"]

    boot = lab.box(disk).boot(timeout=scaled(MAINTENANCE_TIMEOUT))
    assert boot.exit_status == 0, boot.report()
    assert_maintenance_boot(boot, request_id)

    box = assert_done(lab)
    assert len(box["images"]) == 1, box
    assert sha(disk) == original  # a backup never writes the disk
    # The box's image holds the very bytes of its disk (restored on the host to check).
    copy = tmp_path / "restored.img"
    copy.write_bytes(bytes(DISK_SIZE))
    restore_image(open_store(lab.backup), BOX_IP, box["images"][0]["id"], {"vda": copy})
    assert sha(copy) == original
    # The config is gone: PXELINUX falls back to `default`, LOCALBOOT 0, the box's own disk.
    assert_local_boot(lab.box(disk))


def test_restore_onto_a_scrambled_disk_is_byte_identical(lab: E2ELab, tmp_path: Path) -> None:
    disk = tmp_path / "vda.img"
    make_disk(disk, DISK_SIZE, seed=2)
    original = sha(disk)
    # The image to restore: made on the host with the same engine the service uses (a backup
    # boot is the scenario above; doing it again here would double this test's time).
    image = backup_disks(open_store(lab.backup), BOX_IP, {"vda": disk})
    scramble(disk, seed=3)
    assert sha(disk) != original
    broken = lab.box(disk).boot(
        timeout=scaled(BROKEN_TIMEOUT), stop_when=lambda s: "No bootable device" in s
    )
    assert not broken.booted_local_disk, broken.report()  # the box no longer boots

    request_id = arm(lab, "restore", request="scrambled")["request_id"]
    boot = lab.box(disk).boot(timeout=scaled(MAINTENANCE_TIMEOUT))
    assert boot.exit_status == 0, boot.report()
    assert_maintenance_boot(boot, request_id)

    assert sha(disk) == original  # byte-identical
    box = assert_done(lab)
    assert [i["id"] for i in box["images"]] == [image.image_id]
    assert_local_boot(lab.box(disk))


def test_failing_request_is_retried_then_disarmed(lab: E2ELab, tmp_path: Path) -> None:
    """A restore for a box without images fails on every boot. The service records each
    attempt and keeps the config (the box retries after a pause); after max_attempts the
    controller removes the config and the box boots its own disk again."""
    disk = tmp_path / "vda.img"
    make_disk(disk, DISK_SIZE, seed=4)
    original = sha(disk)
    request_id = arm(lab, "restore", max_attempts=2)["request_id"]
    box = lab.box(disk)

    for attempt in (1, 2):

        def failed_attempt_recorded(serial: str, attempt: int = attempt) -> bool:
            result = lab.result(request_id)
            recorded = result is not None and result.get("attempt") == attempt
            return recorded and "before rebooting to retry" in serial

        # The service pauses before its retry reboot; the test powers the box off instead
        # once the failed attempt is on the share and the service says it is pausing.
        boot = box.boot(timeout=scaled(MAINTENANCE_TIMEOUT), stop_when=failed_attempt_recorded)
        assert_maintenance_boot(boot, request_id)
        assert "before rebooting to retry" in boot.serial, boot.report()
        result = lab.result(request_id)
        assert result is not None, f"no result after boot {attempt}: {boot.report()}"
        assert result["outcome"] == "failure", result
        assert result["attempt"] == attempt, result
        # The controller's periodic run: armed after the first failure, disarmed after the last.
        done = lab.reconcile()
        assert done.returncode == 0, done.stdout + done.stderr
        state = lab.status()["state"]
        if attempt == 1:
            assert state == "failed"
            assert lab.config.exists()
        else:
            assert state == "stalled"
            assert not lab.config.exists()

    assert sha(disk) == original  # no attempt touched the disk
    assert_local_boot(box)


def test_no_config_the_box_boots_its_own_disk(lab: E2ELab, tmp_path: Path) -> None:
    disk = tmp_path / "vda.img"
    make_disk(disk, DISK_SIZE, seed=5)
    lab.want("none")
    done = lab.reconcile()
    assert done.returncode == 0, done.stdout + done.stderr
    assert not lab.config.exists()
    assert lab.status()["state"] == "idle"

    boot = assert_local_boot(lab.box(disk))
    assert "PXELINUX" in boot.serial  # it did network-boot first, and fell back to default
