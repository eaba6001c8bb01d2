"""BLKDISCARD of a skip image's free ranges on restore (issue 12.2), on a real loop device.

A loop device discards by punching holes in its backing file, so what was discarded is visible
as the file's allocated blocks shrinking, and discarded bytes read back as zeros. The disk is
a GPT with ext4 (files written, half deleted) and an unknown partition over garbage; the target
loop device's backing file is full of other garbage, fully allocated. Needs root (losetup),
sfdisk and e2fsprogs; skips without them unless TESTBOX_E2E_REQUIRED=1 (CI).
"""

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks._fsimage import MiB, PartSpec, build_disk, check_partition, garbage, tools_missing
from onbox.imaging.backup import backup_disks
from onbox.imaging.discard import discard_free_ranges
from onbox.imaging.restore import restore_image
from onbox.imaging.usedmap import complement
from onbox.store import ImageStore
from tests.unit.imaging.conftest import IP
from tests.unit.imaging.helpers import partclone_missing, require

SIZE = 48 * MiB
LAYOUT = [PartSpec("ext4", 32 * MiB, files=40, file_size=256 * 1024), PartSpec("garbage", 8 * MiB)]


def need() -> None:
    missing = tools_missing("ext4") + partclone_missing()
    if os.geteuid() != 0 or shutil.which("losetup") is None:
        missing.append("root and losetup (loop devices)")
    require(missing)


@pytest.fixture
def loop_target(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(loop device, its backing file): SIZE bytes of garbage, every block allocated."""
    need()
    backing = tmp_path / "target.img"
    garbage(backing, SIZE, seed=77)
    done = subprocess.run(
        ["losetup", "--find", "--show", str(backing)], check=True, capture_output=True, text=True
    )
    device = Path(done.stdout.strip())
    try:
        queue = Path("/sys/block") / device.name / "queue" / "discard_max_bytes"
        if int(queue.read_text()) == 0:
            pytest.skip(f"{device} cannot discard here")
        yield device, backing
    finally:
        subprocess.run(["losetup", "-d", str(device)], check=False)


def _allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512


@pytest.mark.slow
def test_skip_restore_discards_exactly_the_free_ranges(
    store: ImageStore, tmp_path: Path, loop_target: tuple[Path, Path]
) -> None:
    device, backing = loop_target
    built = build_disk(tmp_path / "disk.img", SIZE, LAYOUT)
    skip_id = backup_disks(
        store, IP, {"sda": built.path}, chunk_size=MiB, free_space="skip"
    ).image_id
    manifest = store.manifests(IP, skip_id)[0]
    assert manifest.used is not None
    free = complement(manifest.used, SIZE)
    free_bytes = sum(e - s for s, e in free)
    assert free_bytes > 8 * MiB
    before = _allocated(backing)
    assert before >= SIZE

    report = restore_image(store, IP, skip_id, {"sda": device})
    notes = [n for n in report.notices if "discarded" in n]
    assert len(notes) == 1 and notes[0].startswith("sda: discarded "), report.notices
    # The holes punched are the free ranges: the backing file lost about that much.
    after = _allocated(backing)
    assert before - after >= free_bytes * 0.95, (before, after, free_bytes)
    assert before - after <= free_bytes
    # Every used byte is the source's; every free byte reads back as zeros (a hole).
    source, restored = built.path.read_bytes(), backing.read_bytes()
    for start, end in manifest.used:
        assert restored[start:end] == source[start:end]
    for start, end in free:
        assert restored[start:end].count(0) == end - start
    assert check_partition(backing, built.starts[0], LAYOUT[0].size, "ext4", built.files[0]) == []

    # Restoring again writes nothing; the free ranges are holes already.
    again = restore_image(store, IP, skip_id, {"sda": device})
    assert again.disks[0].bytes_written == 0
    assert _allocated(backing) == after


@pytest.mark.slow
def test_raw_restore_never_discards(
    store: ImageStore, tmp_path: Path, loop_target: tuple[Path, Path]
) -> None:
    device, backing = loop_target
    built = build_disk(tmp_path / "disk.img", SIZE, LAYOUT)
    raw_id = backup_disks(store, IP, {"sda": built.path}, chunk_size=MiB).image_id
    report = restore_image(store, IP, raw_id, {"sda": device})
    assert not [n for n in report.notices if "discard" in n]
    assert backing.read_bytes() == built.path.read_bytes()
    # A skip image with discard=False leaves the free space alone too.
    skip_id = backup_disks(
        store, IP, {"sda": built.path}, chunk_size=MiB, free_space="skip"
    ).image_id
    garbage(backing, SIZE, seed=78)
    before = _allocated(backing)
    report = restore_image(store, IP, skip_id, {"sda": device}, discard=False)
    assert not [n for n in report.notices if "discard" in n]
    assert _allocated(backing) == before


def test_discard_leaves_files_and_unaligned_edges_alone(tmp_path: Path) -> None:
    """Not a block device: nothing is tried. Ranges shrink inward to whole pages."""
    target = tmp_path / "plain.img"
    garbage(target, 4 * MiB, seed=1)
    fd = os.open(target, os.O_RDWR)
    try:
        assert discard_free_ranges(fd, [(0, 4 * MiB)]).bytes == 0
    finally:
        os.close(fd)
    assert _allocated(target) >= 4 * MiB


def test_discard_rounds_inward_on_a_device(loop_target: tuple[Path, Path]) -> None:
    device, backing = loop_target
    page = 4096
    original = backing.read_bytes()
    fd = os.open(device, os.O_RDWR)
    try:
        # [page+1, 3 pages+1) holds one whole page, [2 pages, 3 pages); [5 pages, +100) none.
        result = discard_free_ranges(fd, [(page + 1, 3 * page + 1), (5 * page, 5 * page + 100)])
    finally:
        os.close(fd)
    assert result.bytes == page and "discarded 0.0 MiB" in result.note
    after = backing.read_bytes()
    assert after[2 * page : 3 * page] == bytes(page)
    assert after[: 2 * page] == original[: 2 * page]
    assert after[3 * page :] == original[3 * page :]
