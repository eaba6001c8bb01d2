"""Chunks are stored once across disks, boxes and backups."""

import random
from pathlib import Path

from onbox.imaging.backup import backup_disks
from onbox.store import ImageStore
from tests.unit.imaging.conftest import CS, write_disk


def stored(store: ImageStore) -> int:
    return sum(s.stored_bytes for s in store.chunk_stats())


def test_disks_sharing_90_percent_store_about_1_1x(store: ImageStore, tmp_path: Path) -> None:
    rng = random.Random(3)
    chunks = [rng.randbytes(CS) for _ in range(100)]
    other = list(chunks)
    for i in rng.sample(range(100), 10):
        other[i] = rng.randbytes(CS)
    a = write_disk(tmp_path / "a.img", b"".join(chunks))
    b = write_disk(tmp_path / "b.img", b"".join(other))
    backup_disks(store, "10.0.0.1", {"sda": a}, chunk_size=CS)
    one = stored(store)
    report = backup_disks(store, "10.0.0.2", {"sda": b}, chunk_size=CS)
    ratio = stored(store) / one
    assert 1.08 <= ratio <= 1.12, ratio
    assert report.disks[0].bytes_stored == stored(store) - one


def test_unchanged_disk_stores_nothing_new(store: ImageStore, tmp_path: Path) -> None:
    disk = write_disk(tmp_path / "a.img", random.Random(4).randbytes(20 * CS))
    backup_disks(store, "10.0.0.1", {"sda": disk}, chunk_size=CS)
    again = backup_disks(store, "10.0.0.1", {"sda": disk}, chunk_size=CS)
    assert again.bytes_stored == 0
    assert len(store.list_images("10.0.0.1")) == 2
