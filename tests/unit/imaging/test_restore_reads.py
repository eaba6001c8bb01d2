"""Restore reads each chunk from the store once (issue 12.1), counted two ways.

Through the store interface: a backend that counts every `load` by name. On the file system:
the process's `rchar` (/proc/self/io: bytes returned by read syscalls, page cache included),
which for a restore is the target's own bytes (compared before writing) plus what was read
from the store; a pre-check that read every chunk would add the store's bytes a second time.
"""

import random
from collections import Counter
from pathlib import Path

import pytest

from onbox.errors import IntegrityError
from onbox.imaging.backup import backup_disks
from onbox.imaging.restore import restore_image
from onbox.store import layout
from onbox.store.fs import FilesystemStore, FsBackend
from tests.unit.imaging.conftest import sparse_disk, write_disk
from tests.unit.imaging.helpers import delete_chunk

IP = "10.0.0.5"
CS = 64 * 1024


class CountingBackend(FsBackend):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.loads: Counter[str] = Counter()

    def _load(self, name: str, limit: int) -> bytes:
        self.loads[name] += 1
        return super()._load(name, limit)


class CountingStore(FilesystemStore):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.counting = CountingBackend(root)
        self.fs = self.counting
        self.backend = self.counting

    def chunk_loads(self) -> Counter[str]:
        return Counter({n: c for n, c in self.counting.loads.items() if n.startswith("store/c")})


def disk_data() -> bytes:
    rng = random.Random(12)
    distinct = [rng.randbytes(CS) for _ in range(24)]
    # repeats (a chunk used at several offsets), zeros, and a short tail
    parts = distinct + distinct[:6] + [bytes(CS)] * 4 + [distinct[3]] * 3 + [b"tail" * 100]
    return b"".join(parts)


def rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


@pytest.fixture
def backed_up(tmp_path: Path) -> tuple[Path, bytes, str]:
    root = tmp_path / "backup"
    root.mkdir()
    data = disk_data()
    disk = tmp_path / "sda.img"
    disk.write_bytes(data)
    image = backup_disks(FilesystemStore(root), IP, {"sda": disk}, chunk_size=CS).image_id
    return root, data, image


@pytest.mark.parametrize("sparse", [False, True])  # a sparse target: chunks are read ahead
def test_each_chunk_read_once_through_the_store(
    tmp_path: Path,
    backed_up: tuple,  # type: ignore[type-arg]
    sparse: bool,
) -> None:
    root, data, image = backed_up
    store = CountingStore(root)
    target = tmp_path / "t.img"
    if sparse:
        sparse_disk(target, len(data))
    else:
        write_disk(target, bytes(len(data)))
    report = restore_image(store, IP, image, {"sda": target}, workers=2)
    assert target.read_bytes() == data
    loads = store.chunk_loads()
    distinct = store.read_manifest(IP, image, "sda").stored_ids()
    assert set(loads) == {layout.chunk(c) for c in distinct}
    assert set(loads.values()) == {1}, loads.most_common(3)
    stored = sum(store.stat_chunk(c) or 0 for c in distinct)
    assert report.disks[0].bytes_read == stored


def test_each_chunk_read_once_on_the_file_system(tmp_path: Path, backed_up: tuple) -> None:  # type: ignore[type-arg]
    root, data, image = backed_up
    store = FilesystemStore(root)
    distinct = store.read_manifest(IP, image, "sda").stored_ids()
    stored = sum(store.stat_chunk(c) or 0 for c in distinct)
    target = tmp_path / "t.img"
    target.write_bytes(bytes(len(data)))
    before = rchar()
    restore_image(store, IP, image, {"sda": target}, workers=2)
    read = rchar() - before
    records = 64 * 1024  # commit record, manifest, verify records: small
    assert read <= len(data) + 1.05 * stored + records, (read, len(data), stored)
    assert read >= len(data) + stored


def test_a_sparse_target_is_not_read(tmp_path: Path, backed_up: tuple[Path, bytes, str]) -> None:
    """A fresh disk image file is one hole: SEEK_DATA says so, and only the store is read."""
    root, data, image = backed_up
    store = FilesystemStore(root)
    distinct = store.read_manifest(IP, image, "sda").stored_ids()
    stored = sum(store.stat_chunk(c) or 0 for c in distinct)
    target = sparse_disk(tmp_path / "t.img", len(data))
    before = rchar()
    restore_image(store, IP, image, {"sda": target}, workers=2)
    read = rchar() - before
    assert target.read_bytes() == data
    assert stored <= read <= 1.05 * stored + 64 * 1024, (read, stored)


def test_a_target_part_hole_part_garbage_is_restored_exactly(
    tmp_path: Path, backed_up: tuple[Path, bytes, str]
) -> None:
    """Holes and data side by side, boundaries inside chunks too: every chunk ends up right."""
    root, data, image = backed_up
    target = tmp_path / "t.img"
    rng = random.Random(3)
    with target.open("wb") as f:
        f.truncate(len(data))
        for offset in range(0, len(data), 3 * CS):  # a chunk of garbage, then two of hole
            f.seek(offset + CS // 2)
            f.write(rng.randbytes(max(0, min(CS, len(data) - offset - CS // 2))))
    restore_image(FilesystemStore(root), IP, image, {"sda": target}, workers=2)
    assert target.read_bytes() == data


def test_missing_chunk_refused_without_reading_any_chunk(tmp_path: Path, backed_up: tuple) -> None:  # type: ignore[type-arg]
    root, data, image = backed_up
    store = CountingStore(root)
    victim = sorted(store.read_manifest(IP, image, "sda").stored_ids())[5]
    delete_chunk(store, victim)
    target = tmp_path / "t.img"
    target.write_bytes(b"\x01" * len(data))
    with pytest.raises(IntegrityError, match=f"chunk {victim} missing.*no disk was touched"):
        restore_image(store, IP, image, {"sda": target}, workers=2)
    assert store.chunk_loads() == Counter()
    assert target.read_bytes() == b"\x01" * len(data)


def test_an_unchanged_sparse_disk_image_reads_no_chunk(tmp_path: Path, backed_up: tuple) -> None:  # type: ignore[type-arg]
    """Read-ahead takes only chunks with a use in a hole: a restored image file (holes where
    the image has zeros) holds every chunk already, and none is fetched."""
    root, data, image = backed_up
    target = sparse_disk(tmp_path / "t.img", len(data))
    restore_image(FilesystemStore(root), IP, image, {"sda": target}, workers=2)
    store = CountingStore(root)
    report = restore_image(store, IP, image, {"sda": target}, workers=2)
    assert target.read_bytes() == data
    assert store.chunk_loads() == Counter()
    assert report.disks[0].bytes_written == 0
