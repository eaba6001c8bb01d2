"""`free_space: skip` through the real boot path (issue 12): back up, scramble, restore, boot.

The box (BIOS, like tests/e2e/test_network_boot.py) has a real MBR disk: the harness's boot
sector with one partition entry, and an ext4 filesystem in that partition made here with
`mkfs.ext4 -d` (no mount, no root needed): files written, half of them deleted again with
`debugfs`, so the filesystem's free blocks hold the old files' bytes and noise, as on a box that
installs and removes builds all day. Everything goes through the desired file and `testboxctl`:

1. `free_space: skip` + backup → the box network-boots maintenance; the service maps `/dev/vda1`
   with partclone inside the guest and images only what ext4 uses (the partition table and the
   gap before the partition raw); the commit record and manifest say `skip` and name the used
   ranges, and the image stores far less than a raw backup of the same disk (made on the host);
2. the disk is scrambled (boot sector, superblock, file data);
3. restore → a second maintenance boot writes the used ranges back;
4. the box boots its own disk again, `e2fsck -fn` is clean and every file is what it was when
   the backup ran; the deleted ones stay deleted.
"""

import random
import re
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from onbox.imaging.backup import backup_disks
from onbox.store import open_store
from tests.e2e.conftest import REQUIRED
from tests.e2e.harness import boot_sector
from tests.e2e.lab import BOX_IP, E2ELab
from tests.e2e.test_network_boot import (
    MAINTENANCE_TIMEOUT,
    arm,
    assert_done,
    assert_local_boot,
    assert_maintenance_boot,
)
from tests.e2e.timing import MAX_SCALE, scaled

# Per-boot limits scale with the machine's load (tests/e2e/timing.py); this is the backstop.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300 * MAX_SCALE)]

MiB = 1 << 20
DISK_SIZE = 64 * MiB
PART_START = 1 * MiB  # LBA 2048, where fdisk puts the first partition
PART_SIZE = DISK_SIZE - PART_START
SECTOR = 512
TOOLS = ("mkfs.ext4", "debugfs", "e2fsck")  # Debian e2fsprogs (.ci/install-system-packages)
# The top-level directories of the test filesystem (its root also has lost+found).
DIRS = ("data", "etc")


@pytest.fixture
def ext4_tools() -> Iterator[dict[str, str]]:
    found = {t: shutil.which(t, path="/usr/sbin:/sbin:/usr/bin:/bin") for t in TOOLS}
    missing = [t for t, path in found.items() if path is None]
    if missing:
        message = f"{', '.join(missing)} missing (Debian package e2fsprogs)"
        if REQUIRED:
            pytest.fail(message + " (TESTBOX_E2E_REQUIRED=1: a skip would hide this)")
        pytest.skip(message)
    yield {t: path for t, path in found.items() if path is not None}


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, f"{argv}: exit {done.returncode}\n{done.stdout}{done.stderr}"
    return done


def write_files(root: Path, rng: random.Random) -> dict[str, bytes]:
    """A small tree: random binaries (incompressible, so stored bytes show what was imaged),
    text files, a nested directory and an empty file. Relative path -> content."""
    files: dict[str, bytes] = {}
    for i in range(24):
        if i % 3:
            name, data = f"data/blob-{i:02d}.bin", rng.randbytes(rng.randrange(300_000, 1_100_000))
        else:
            name = f"etc/conf.d/note-{i:02d}.txt"
            data = "".join(f"setting{i}.{n} = {rng.random()}\n" for n in range(2000)).encode()
        files[name] = data
    files["etc/empty"] = b""
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def ext4_disk(disk: Path, work: Path, tools: dict[str, str], seed: int) -> dict[str, bytes]:
    """Write the box's disk; return the files its filesystem holds (the deleted ones excluded)."""
    rng = random.Random(seed)
    work.mkdir()
    tree = work / "tree"
    files = write_files(tree, rng)
    part = work / "part.img"
    # The partition's old content: noise, as a disk that held other data before. `nodiscard`:
    # mke2fs would otherwise punch holes in an image file and the noise would be gone.
    # `lazy_itable_init=0`: inode tables zeroed now (the kernel would do it after the first
    # mount), so the used metadata is not noise either.
    part.write_bytes(rng.randbytes(PART_SIZE))
    options = "nodiscard,lazy_itable_init=0,lazy_journal_init=0"
    run([tools["mkfs.ext4"], "-q", "-F", "-b", "4096", "-E", options, "-d", str(tree), str(part)])
    # Delete every other binary: its blocks become free but keep their bytes (garbage).
    deleted = sorted(name for name in files if name.endswith(".bin"))[::2]
    commands = work / "rm.debugfs"
    commands.write_text("".join(f"rm /{name}\n" for name in deleted))
    run([tools["debugfs"], "-w", "-f", str(commands), str(part)])
    run([tools["e2fsck"], "-fn", str(part)])  # the built filesystem is clean to begin with
    # The MBR: the harness's boot code (it prints the local-disk marker) + one Linux partition.
    mbr = bytearray(boot_sector())
    entry = struct.pack("<B3sB3sII", 0, b"", 0x83, b"", PART_START // SECTOR, PART_SIZE // SECTOR)
    mbr[446 : 446 + 16] = entry
    with disk.open("wb") as f:
        f.write(bytes(mbr).ljust(PART_START, b"\0"))
        f.write(part.read_bytes())
    assert disk.stat().st_size == DISK_SIZE
    return {name: data for name, data in files.items() if name not in deleted}


def partition_files(disk: Path, work: Path, tools: dict[str, str]) -> dict[str, bytes]:
    """`e2fsck -fn` the disk's partition (must be clean) and read back every file in it."""
    work.mkdir()
    part = work / "part.img"
    with disk.open("rb") as f:
        f.seek(PART_START)
        part.write_bytes(f.read(PART_SIZE))
    checked = subprocess.run(
        [tools["e2fsck"], "-fn", str(part)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, f"e2fsck -fn: exit {checked.returncode}\n{checked.stdout}"
    out = work / "files"
    out.mkdir()
    run([tools["debugfs"], "-R", f"rdump {' '.join('/' + d for d in DIRS)} {out}", str(part)])
    return {
        str(path.relative_to(out)): path.read_bytes()
        for path in sorted(out.rglob("*"))
        if path.is_file()
    }


def scramble(disk: Path, seed: int) -> None:
    """Noise over the MBR, the gap, the filesystem's first MiBs (superblock, group descriptors,
    bitmaps) and every other MiB after that: neither the box nor its filesystem survives."""
    rng = random.Random(seed)
    with disk.open("r+b") as f:
        for offset in range(0, DISK_SIZE, MiB):
            if offset < 3 * MiB or (offset // MiB) % 2 == 0:
                f.seek(offset)
                f.write(rng.randbytes(MiB))


def used_bytes_equal(a: bytes, b: bytes, used: list[tuple[int, int]]) -> bool:
    return all(a[start:end] == b[start:end] for start, end in used)


def test_free_space_skip_backup_and_restore_through_network_boot(
    lab: E2ELab, ext4_tools: dict[str, str], tmp_path: Path
) -> None:
    disk = tmp_path / "vda.img"
    kept = ext4_disk(disk, tmp_path / "build", ext4_tools, seed=12)
    at_backup = disk.read_bytes()
    # What `raw` would store for the same disk: the same engine, on the host, its own store.
    raw = backup_disks(open_store(tmp_path / "raw-store"), BOX_IP, {"vda": disk})

    # 1. Backup with free_space: skip, through a maintenance boot.
    request_id = arm(lab, "backup", free_space="skip")["request_id"]
    boot = lab.box(disk).boot(timeout=scaled(MAINTENANCE_TIMEOUT))
    assert boot.exit_status == 0, boot.report()
    assert_maintenance_boot(boot, request_id)
    box = assert_done(lab)
    assert disk.read_bytes() == at_backup  # a backup never writes the disk
    (image,) = box["images"]
    store = open_store(lab.backup)
    commit = store.read_commit(BOX_IP, image["id"])
    manifest = store.read_manifest(BOX_IP, image["id"], "vda")
    assert commit.free_space == "skip", commit
    assert manifest.free_space == "skip" and manifest.used is not None, manifest

    # The guest's kernel found the partition, and partclone read its node /dev/vda1 (no loop
    # device was attached, the fallback for disk image files) ...
    assert " vda: vda1" in boot.serial, boot.report()
    assert "loop0: detected capacity" not in boot.serial, boot.report()
    # ... and mapped it (not the raw fallback), as the box's log says.
    log = (lab.box_dir / "maintenance.log").read_text()
    mapped = re.search(r"vda: partition 1 \(ext\): ([\d.]+) MiB of ([\d.]+) MiB used", log)
    assert mapped, f"no used-block map of vda1 in the box's log:\n{log}"
    used = manifest.used
    used_bytes = sum(end - start for start, end in used)
    # The partition table and the gap before the partition are raw; the rest is what ext4 uses.
    assert used[0][0] == 0 and used[0][1] >= PART_START, used[:3]
    assert used_bytes < PART_SIZE // 2, (used_bytes, used)
    stored = commit.disks[0].stored_bytes
    assert stored < raw.bytes_stored // 2, (stored, raw.bytes_stored)
    result = lab.result(request_id)
    assert result is not None and result["outcome"] == "success", result
    assert result["disks"][0]["bytes_free"] == DISK_SIZE - used_bytes, result
    print(
        f"\nguest map: {mapped.group(0)}; used {used_bytes} of {DISK_SIZE} bytes "
        f"({len(used)} ranges); stored {stored} bytes (skip) vs {raw.bytes_stored} (raw); "
        f"backup boot {boot.seconds:.1f} s"
    )

    # 2. Scrambled: boot sector, superblock, file data.
    scramble(disk, seed=13)
    assert not used_bytes_equal(disk.read_bytes(), at_backup, used)

    # 3. Restore through a maintenance boot.
    request_id = arm(lab, "restore", request="scrambled", free_space="skip")["request_id"]
    boot = lab.box(disk).boot(timeout=scaled(MAINTENANCE_TIMEOUT))
    assert boot.exit_status == 0, boot.report()
    assert_maintenance_boot(boot, request_id)
    box = assert_done(lab)
    assert [i["id"] for i in box["images"]] == [image["id"]]
    result = lab.result(request_id)
    assert result is not None and result["outcome"] == "success", result
    assert result["disks"][0]["bytes_free"] == DISK_SIZE - used_bytes, result
    restored = disk.read_bytes()
    assert used_bytes_equal(restored, at_backup, used)  # every used byte as at backup time
    assert restored != at_backup  # free blocks did not come from the image (it has none)
    print(f"restore boot {boot.seconds:.1f} s, wrote {result['disks'][0]['bytes_written']} bytes")

    # 4. The box boots its own disk; its filesystem is clean and holds the files it held.
    assert_local_boot(lab.box(disk))
    files = partition_files(disk, tmp_path / "check", ext4_tools)
    assert sorted(files) == sorted(kept)
    assert all(files[name] == kept[name] for name in kept)
