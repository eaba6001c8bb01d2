"""UEFI boxes for real: OVMF PXE → syslinux.efi picks the box's config (`PATH efi64`) or
`default` → the maintenance kernel and root → the service → back to the firmware's boot order,
whose next entry is the box's disk (a GPT disk whose ESP boots a GRUB image printing a marker).

Driven like the BIOS scenarios, only through the desired file (`firmware: uefi`) and
`testboxctl`; QEMU (OVMF, TCG) is the box. Each box's NVRAM is set up once, as a lab
does in the firmware setup: PXE over IPv4 first, the disk next (tests/e2e/ovmf.py).
"""

import random
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from onbox.imaging.backup import backup_disks
from onbox.imaging.restore import restore_image
from onbox.store import open_store
from tests.e2e import ovmf
from tests.e2e.conftest import REQUIRED
from tests.e2e.harness import LOCAL_DISK_MARKER, BootResult, Box
from tests.e2e.lab import BOX_IP, E2ELab
from tests.e2e.test_network_boot import arm, assert_done, assert_maintenance_boot, sha
from tests.e2e.timing import MAX_SCALE, scaled

# Per-boot limits scale with the machine's load (tests/e2e/timing.py); this is the backstop.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300 * MAX_SCALE)]

MiB = 1 << 20
DISK_SIZE = 32 * MiB
# Quiet-machine limits with margin, times timing.scale(). A maintenance boot under OVMF: PXE
# and the kernel + initrd over OVMF's TFTP take ~15 s longer than under SeaBIOS.
MAINTENANCE_TIMEOUT = 180.0
# Power-on → PXEv4 → syslinux.efi → `default` → LOCALBOOT → the disk's loader: ~11 s quiet.
LOCAL_TIMEOUT = 45.0
# A scrambled disk: PXEv4, `default`, then the firmware's disk entry fails.
BROKEN_TIMEOUT = 45.0
# OVMF's line when the disk's entry in its boot order fails: the box cannot reach its OS.
DISK_FAILED = re.compile(r'failed to load Boot[0-9A-F]{4} "UEFI Misc Device"')


@pytest.fixture
def uefi_lab(lab: E2ELab) -> Iterator[E2ELab]:
    missing = ovmf.missing()
    if missing:
        message = "UEFI prerequisites missing: " + "; ".join(missing)
        if REQUIRED:
            pytest.fail(message + " (TESTBOX_E2E_REQUIRED=1: a skip would hide this)")
        pytest.skip(message)
    lab.firmware = "uefi"
    assert (lab.tftp / "syslinux.efi").is_file(), "init --lab copied no syslinux.efi"
    assert (lab.tftp / "ldlinux.e64").is_file(), "init --lab copied no ldlinux.e64"
    yield lab


def uefi_disk(tmp_path: Path, seed: int) -> Path:
    disk = tmp_path / "vda.img"
    ovmf.make_uefi_disk(disk, DISK_SIZE, seed, LOCAL_DISK_MARKER, tmp_path / "esp-build")
    return disk


def set_up(box: Box) -> None:
    """The lab's one-time firmware setup of the box: network (PXE over IPv4) first, disk next."""
    order = box.setup_firmware()
    assert order[0].ipv4_pxe, order
    assert not order[1].network and not order[1].firmware_volume, order


def assert_uefi_local_boot(box: Box) -> BootResult:
    boot = box.boot(timeout=scaled(LOCAL_TIMEOUT))
    assert boot.booted_local_disk, f"the box did not boot its own disk: {boot.report()}"
    assert not boot.booted_maintenance, f"maintenance booted again: {boot.report()}"
    # It network-booted first: syslinux.efi, no box config, LOCALBOOT back to the firmware,
    # which went straight to the disk (no HTTP boot, no IPv6 on the way).
    assert "NBP filename is syslinux.efi" in boot.serial, boot.report()
    assert "Load Error" in boot.serial, boot.report()
    assert "HTTP Boot" not in boot.serial and "IPv6" not in boot.serial, boot.report()
    return boot


def scramble_gpt_disk(path: Path, seed: int) -> None:
    """Noise over both GPT headers, the ESP's start and every other MiB: nothing boots."""
    rng = random.Random(seed)
    size = path.stat().st_size
    with path.open("r+b") as f:
        for offset in [*range(0, size, 2 * MiB), ovmf.ESP_START, size - MiB]:
            f.seek(offset)
            f.write(rng.randbytes(MiB))


def test_uefi_no_config_the_box_boots_its_own_disk(uefi_lab: E2ELab, tmp_path: Path) -> None:
    disk = uefi_disk(tmp_path, seed=11)
    uefi_lab.want("none")
    done = uefi_lab.reconcile()
    assert done.returncode == 0, done.stdout + done.stderr
    assert not uefi_lab.config.exists()
    assert uefi_lab.status()["state"] == "idle"

    box = uefi_lab.box(disk)
    set_up(box)
    boot = assert_uefi_local_boot(box)
    # The figure in the README: power-on to the disk's loader with no box config.
    print(f"\nUEFI power-on to local disk, no config: {boot.seconds:.1f} s")


def test_uefi_backup_then_the_box_boots_its_own_disk(uefi_lab: E2ELab, tmp_path: Path) -> None:
    disk = uefi_disk(tmp_path, seed=12)
    original = sha(disk)
    request_id = arm(uefi_lab, "backup")["request_id"]
    assert "PATH efi64" in uefi_lab.config.read_text()

    box = uefi_lab.box(disk)
    set_up(box)
    boot = box.boot(timeout=scaled(MAINTENANCE_TIMEOUT))
    assert boot.exit_status == 0, boot.report()
    assert "NBP filename is syslinux.efi" in boot.serial, boot.report()
    assert_maintenance_boot(boot, request_id)

    entry = assert_done(uefi_lab)
    assert len(entry["images"]) == 1, entry
    assert sha(disk) == original  # a backup never writes the disk
    copy = tmp_path / "restored.img"
    copy.write_bytes(bytes(DISK_SIZE))
    restore_image(open_store(uefi_lab.backup), BOX_IP, entry["images"][0]["id"], {"vda": copy})
    assert sha(copy) == original
    # The config is gone: syslinux.efi takes `default`, LOCALBOOT, the firmware boots the disk.
    assert_uefi_local_boot(box)


def test_uefi_restore_onto_a_scrambled_disk_is_byte_identical_and_boots(
    uefi_lab: E2ELab, tmp_path: Path
) -> None:
    disk = uefi_disk(tmp_path, seed=13)
    original = sha(disk)
    box = uefi_lab.box(disk)
    set_up(box)
    # The image: made on the host with the service's engine (the backup scenario boots for it).
    image = backup_disks(open_store(uefi_lab.backup), BOX_IP, {"vda": disk})
    scramble_gpt_disk(disk, seed=14)
    assert sha(disk) != original
    broken = box.boot(
        timeout=scaled(BROKEN_TIMEOUT), stop_when=lambda s: DISK_FAILED.search(s) is not None
    )
    assert DISK_FAILED.search(broken.serial), broken.report()
    assert not broken.booted_local_disk, broken.report()  # the box no longer boots

    request_id = arm(uefi_lab, "restore", request="scrambled")["request_id"]
    boot = box.boot(timeout=scaled(MAINTENANCE_TIMEOUT))
    assert boot.exit_status == 0, boot.report()
    assert_maintenance_boot(boot, request_id)

    assert sha(disk) == original  # byte-identical
    entry = assert_done(uefi_lab)
    assert [i["id"] for i in entry["images"]] == [image.image_id]
    assert_uefi_local_boot(box)
