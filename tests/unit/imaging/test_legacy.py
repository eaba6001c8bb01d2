"""The seed's gz images: listed, verified, restored under the same rules, imported."""

import gzip
import os
import random
from pathlib import Path

import pytest

from onbox.errors import ImagingError, IntegrityError
from onbox.imaging.legacy import import_legacy
from onbox.imaging.restore import restore_image
from onbox.imaging.verify import verify_images
from onbox.store import ImageStore, MemoryStore
from onbox.store.fs import FilesystemStore
from tests.unit.imaging.conftest import CS, IP, write_disk


def add_legacy(store: ImageStore, name: str, gz: bytes, mtime: float = 1_700_000_000) -> None:
    if isinstance(store, MemoryStore):
        store.add_legacy(IP, name, gz, mtime)
        return
    assert isinstance(store, FilesystemStore)
    box = store.root / IP
    box.mkdir(exist_ok=True)
    (box / name).write_bytes(gz)
    os.utime(box / name, (mtime, mtime))


DATA = random.Random(11).randbytes(3 * CS) + bytes(4 * CS) + b"tail"


def test_listed_and_restored(store: ImageStore, tmp_path: Path) -> None:
    add_legacy(store, "sda.raw.gz", gzip.compress(DATA))
    (image,) = store.list_images(IP)
    assert (image.id, image.kind, [d.disk for d in image.disks]) == ("legacy", "legacy", ["sda"])
    target = write_disk(tmp_path / "t.img", b"\xff" * (len(DATA) + 10))
    report = restore_image(store, IP, "legacy", {"sda": target})
    assert target.read_bytes() == DATA + b"\xff" * 10
    assert report.disks[0].bytes_written == len(DATA)
    again = restore_image(store, IP, "latest", {"sda": target})
    assert again.disks[0].bytes_written == 0
    assert verify_images(store).ok


def test_newer_file_of_a_disk_wins(store: ImageStore, tmp_path: Path) -> None:
    add_legacy(store, "sda.gz", gzip.compress(b"old" * 10), mtime=1_600_000_000)
    add_legacy(store, "sda.raw.gz", gzip.compress(b"new" * 10), mtime=1_700_000_000)
    target = write_disk(tmp_path / "t.img", bytes(30))
    restore_image(store, IP, "legacy", {"sda": target})
    assert target.read_bytes() == b"new" * 10


def test_refuses_small_target_and_damage(store: ImageStore, tmp_path: Path) -> None:
    add_legacy(store, "sda.gz", gzip.compress(DATA))
    small = write_disk(tmp_path / "small.img", b"s" * (len(DATA) - 1))
    with pytest.raises(ImagingError, match="refusing to restore sda"):
        restore_image(store, IP, "legacy", {"sda": small})
    assert small.read_bytes() == b"s" * (len(DATA) - 1)

    damaged = bytearray(gzip.compress(DATA))
    damaged[len(damaged) // 2] ^= 0xFF
    add_legacy(store, "sdb.gz", bytes(damaged))
    target = write_disk(tmp_path / "t.img", b"x" * len(DATA))
    with pytest.raises(IntegrityError, match=r"sdb\.gz is damaged"):
        restore_image(store, IP, "legacy", {"sdb": target})
    assert target.read_bytes() == b"x" * len(DATA)
    report = verify_images(store, IP, "legacy")
    assert [(p.disk, p.kind) for p in report.problems] == [("sdb", "corrupt")]


def test_import(store: ImageStore, tmp_path: Path) -> None:
    add_legacy(store, "sda.gz", gzip.compress(DATA))
    report = import_legacy(store, IP, chunk_size=CS)
    (image,) = store.list_images(IP)
    assert image.kind == "chunked" and image.id == report.image_id
    assert image.created.timestamp() == 1_700_000_000  # dated like the gz it came from
    target = write_disk(tmp_path / "t.img", bytes(len(DATA)))
    restore_image(store, IP, "latest", {"sda": target})
    assert target.read_bytes() == DATA


def test_damaged_gz_is_not_imported(store: ImageStore) -> None:
    gz = bytearray(gzip.compress(DATA))
    gz[-6] ^= 0xFF  # the CRC-32 trailer
    add_legacy(store, "sda.gz", bytes(gz))
    with pytest.raises((IntegrityError, ImagingError)):
        import_legacy(store, IP, chunk_size=CS)
    assert [i.kind for i in store.list_images(IP)] == ["legacy"]
