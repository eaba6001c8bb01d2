"""free_space: skip on real filesystems (contract §4, issue 12.2): maps, round trips, raw fallbacks.

Disks are built in the test with the real tools (sfdisk, mkfs.ext4 + debugfs, mkfs.vfat +
mtools) over garbage, files written and some deleted; partclone maps them. Without those tools
(or root, for the loop devices partclone reads partitions of an image file through) the tests
skip, unless TESTBOX_E2E_REQUIRED=1 (CI), where a skip would hide a missing package.
"""

import os
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks._fsimage import MiB, PartSpec, build_disk, check_partition, garbage, tools_missing
from onbox.imaging.backup import backup_disks
from onbox.imaging.partitions import read_partition_table
from onbox.imaging.restore import restore_image
from onbox.imaging.usedmap import complement, map_disk, merge
from onbox.imaging.verify import verify_images
from onbox.store import ImageStore
from onbox.store.records import DiskManifest
from schema.types import FreeSpace
from tests.unit.imaging.conftest import IP
from tests.unit.imaging.helpers import partclone_missing, require

CHUNK = 1 * MiB


def need(*fs: str, root: bool = True) -> None:
    missing = tools_missing(*fs) + partclone_missing()
    if root and os.geteuid() != 0:
        missing.append("root (loop devices)")
    require(missing)


LAYOUT = [
    PartSpec("ext4", 40 * MiB, files=40),
    PartSpec("vfat", 24 * MiB, files=20),
    PartSpec("garbage", 8 * MiB),
]
DISK = 80 * MiB


def test_gpt_and_mbr_tables_are_read(tmp_path: Path) -> None:
    need(root=False)
    disk = tmp_path / "d.img"
    disk.write_bytes(b"")
    os.truncate(disk, 64 * MiB)
    _sfdisk(disk, b"label: gpt\n,8M\n,16M\n")
    fd = os.open(disk, os.O_RDONLY)
    try:
        gpt = read_partition_table(fd, 64 * MiB)
    finally:
        os.close(fd)
    assert gpt.kind == "gpt"
    assert [(p.number, p.start, p.size) for p in gpt.partitions] == [
        (1, MiB, 8 * MiB),
        (2, 9 * MiB, 16 * MiB),
    ]
    # MBR with an extended partition holding two logical ones.
    script = b"label: dos\n,8M,83\n,,5\n,10M,83\n,10M,7\n"
    _sfdisk(disk, script)
    fd = os.open(disk, os.O_RDONLY)
    try:
        mbr = read_partition_table(fd, 64 * MiB)
        # A damaged GPT is not trusted at all (nor its protective MBR): the disk is raw.
        _sfdisk(disk, b"label: gpt\n,8M\n")
        with open(disk, "r+b") as f:
            f.seek(512 + 40)
            f.write(b"X")
            f.seek(64 * MiB - 512 + 40)
            f.write(b"X")
        broken = read_partition_table(fd, 64 * MiB)
    finally:
        os.close(fd)
    assert mbr.kind == "mbr"
    assert [(p.number, p.type) for p in mbr.partitions] == [(1, "83"), (5, "83"), (6, "07")]
    assert mbr.partitions[1].start > mbr.partitions[0].end
    assert broken.kind == "none"


def _sfdisk(disk: Path, script: bytes) -> None:
    subprocess.run(["sfdisk", "-q", "--wipe", "always", str(disk)], input=script, check=True)


def test_ext4_map_frees_deleted_files_and_keeps_live_ones(tmp_path: Path) -> None:
    """A filesystem on the whole disk: every live file block used, every deleted one free."""
    need("ext4", root=False)
    fs = tmp_path / "fs.img"
    garbage(fs, 48 * MiB, seed=3)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-b", "4096", "-E", "nodiscard", str(fs)], check=True)
    for i in range(12):
        (tmp_path / f"f{i}").write_bytes(os.urandom(300_000))
    cmds = "".join(f"write {tmp_path / f'f{i}'} f{i}\n" for i in range(12))
    subprocess.run(["debugfs", "-w", "-f", "-", str(fs)], input=cmds.encode(), check=True)
    blocks = {i: _ext_blocks(fs, f"f{i}") for i in range(12)}
    rm = "".join(f"rm f{i}\n" for i in range(0, 12, 2))
    subprocess.run(["debugfs", "-w", "-f", "-", str(fs)], input=rm.encode(), check=True)

    disk_map = map_disk(fs, 48 * MiB)
    assert disk_map.notes[0] == "partition table: none"
    used = disk_map.used
    for i, file_blocks in blocks.items():
        for block in file_blocks:
            inside = any(s <= block * 4096 and block * 4096 + 4096 <= e for s, e in used)
            assert inside == (i % 2 == 1), f"file f{i} block {block}"
    assert disk_map.used_bytes < 48 * MiB // 2


def _ext_blocks(fs: Path, name: str) -> list[int]:
    out = subprocess.run(
        ["debugfs", "-R", f"blocks {name}", str(fs)], capture_output=True, check=True
    ).stdout
    return [int(b) for b in out.split()]


def _backup(store: ImageStore, disk: Path, policy: FreeSpace) -> str:
    report = backup_disks(store, IP, {"sda": disk}, chunk_size=CHUNK, free_space=policy)
    return report.image_id


@pytest.mark.slow
def test_round_trip_ext4_and_fat_skip_stores_less(store: ImageStore, tmp_path: Path) -> None:
    need("ext4", "vfat")
    built = build_disk(tmp_path / "disk.img", DISK, LAYOUT)
    disk_map = map_disk(built.path, DISK)
    assert [n.split(":")[0] for n in disk_map.notes] == [
        "partition table",
        "partition 1 (ext)",
        "partition 2 (fat)",
        "partition 3",
    ]
    raw_id = _backup(store, built.path, "raw")
    raw_bytes = store.read_commit(IP, raw_id).disks[0].stored_bytes
    skip_id = _backup(store, built.path, "skip")
    record = store.read_commit(IP, skip_id)
    assert record.free_space == "skip" and store.read_commit(IP, raw_id).free_space == "raw"
    manifest = store.manifests(IP, skip_id)[0]
    assert manifest.free_space == "skip" and manifest.used == disk_map.used
    assert record.disks[0].free_chunks > 0
    assert record.disks[0].stored_bytes < raw_bytes * 0.7
    assert verify_images(store, IP, skip_id).ok

    # The target holds other garbage: the free blocks keep it, and nothing may care.
    target = tmp_path / "target.img"
    garbage(target, DISK, seed=99)
    report = restore_image(store, IP, skip_id, {"sda": target})
    figures = report.disks[0]
    assert figures.bytes_free == DISK - disk_map.used_bytes
    assert figures.bytes_written + figures.bytes_skipped == disk_map.used_bytes
    for index, fs in ((0, "ext4"), (1, "vfat")):
        start, size = built.starts[index], LAYOUT[index].size
        assert check_partition(target, start, size, fs, built.files[index]) == []
    # Raw regions (tables, gaps, the unknown filesystem) are byte for byte the source.
    source, restored = built.path.read_bytes(), target.read_bytes()
    filesystems = list(zip(built.starts[:2], LAYOUT[:2], strict=True))
    for start, end in disk_map.used:
        if not any(s <= start < s + p.size for s, p in filesystems):
            assert restored[start:end] == source[start:end]
    unknown = slice(built.starts[2], built.starts[2] + LAYOUT[2].size)
    assert restored[unknown] == source[unknown]
    # A second restore finds every used byte in place and writes nothing.
    again = restore_image(store, IP, skip_id, {"sda": target}).disks[0]
    assert again.bytes_written == 0


def test_unknown_filesystem_is_raw_and_byte_identical(store: ImageStore, tmp_path: Path) -> None:
    need(root=False)
    disk = tmp_path / "disk.img"
    garbage(disk, 16 * MiB, seed=5)
    disk_map = map_disk(disk, 16 * MiB)
    assert disk_map.used == [(0, 16 * MiB)]
    skip_id = _backup(store, disk, "skip")
    raw_id = _backup(store, disk, "raw")
    assert (
        store.read_commit(IP, skip_id).disks[0].stored_bytes
        == store.read_commit(IP, raw_id).disks[0].stored_bytes
    )
    target = tmp_path / "target.img"
    garbage(target, 16 * MiB, seed=6)
    restore_image(store, IP, skip_id, {"sda": target})
    assert target.read_bytes() == disk.read_bytes()


def test_unclean_ext4_is_raw(tmp_path: Path) -> None:
    """A filesystem with a journal to replay is not trusted: its bitmaps may be behind."""
    need("ext4", root=False)
    fs = tmp_path / "fs.img"
    garbage(fs, 16 * MiB, seed=7)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(fs)], check=True)
    subprocess.run(["debugfs", "-w", "-R", "feature needs_recovery", str(fs)], check=True)
    disk_map = map_disk(fs, 16 * MiB)
    assert disk_map.used == [(0, 16 * MiB)]
    assert "journal to replay" in disk_map.notes[1]


def test_old_manifests_read_as_raw_and_bad_maps_are_refused() -> None:
    old = DiskManifest.model_validate_json(
        '{"format":1,"disk":"sda","size":8192,"chunk_size":4096,"chunks":[null,null]}'
    )
    assert old.free_space == "raw" and old.used is None and old.chunk_used(1) is None
    good = DiskManifest.model_validate_json(
        '{"format":1,"disk":"sda","size":8192,"chunk_size":4096,"chunks":[null,null],'
        '"free_space":"skip","used":[[0,512],[1024,2048]]}'
    )
    assert good.chunk_used(0) == [(0, 512), (1024, 2048)] and good.chunk_used(1) == []
    assert good.free_bytes() == 8192 - 1536
    for used in ("[[0,9000]]", "[[512,1024],[0,100]]", "[[10,10]]"):
        with pytest.raises(ValueError):
            DiskManifest.model_validate_json(
                '{"format":1,"disk":"sda","size":8192,"chunk_size":4096,"chunks":[null,null],'
                f'"free_space":"skip","used":{used}}}'
            )
    with pytest.raises(ValueError, match="no byte of it is used"):
        DiskManifest.model_validate_json(
            '{"format":1,"disk":"sda","size":8192,"chunk_size":4096,'
            f'"chunks":[null,"{"a" * 64}"],"free_space":"skip","used":[[0,512]]}}'
        )


def test_range_helpers() -> None:
    assert merge([(5, 9), (0, 2), (2, 4), (8, 12), (20, 20)]) == [(0, 4), (5, 12)]
    assert complement([(0, 4), (5, 12)], 16) == [(4, 5), (12, 16)]
    assert complement([], 3) == [(0, 3)]


@settings(max_examples=100, deadline=None)
@given(
    head=st.binary(min_size=1024, max_size=1024),
    entries=st.lists(
        st.tuples(
            st.sampled_from([0x00, 0x80, 0x01]),
            st.sampled_from([0x00, 0x05, 0x07, 0x0F, 0x83, 0x85, 0xEE]),
            st.integers(0, 2**32 - 1),
            st.integers(0, 2**32 - 1),
        ),
        min_size=4,
        max_size=4,
    ),
    gpt=st.booleans(),
)
def test_any_table_bytes_give_partitions_inside_the_disk(
    tmp_path_factory: pytest.TempPathFactory,
    head: bytes,
    entries: list[tuple[int, int, int, int]],
    gpt: bool,
) -> None:
    """Hostile or broken tables never raise and never name bytes beyond the disk."""
    sector0 = bytearray(head[:512])
    for i, (status, ptype, first, count) in enumerate(entries):
        struct.pack_into("<B3xB3xII", sector0, 446 + 16 * i, status, ptype, first, count)
    sector0[510:512] = b"\x55\xaa"
    sector1 = bytearray(head[512:])
    if gpt:
        sector1[:8] = b"EFI PART"
    size = 64 * 1024
    disk = tmp_path_factory.mktemp("t") / "d.img"
    disk.write_bytes(bytes(sector0) + bytes(sector1) + bytes(size - 1024))
    fd = os.open(disk, os.O_RDONLY)
    try:
        table = read_partition_table(fd, size)
    finally:
        os.close(fd)
    for part in table.partitions:
        assert 0 <= part.start < part.end <= size or (part.start == 0 and part.size == size)
