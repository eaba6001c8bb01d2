"""Backup then restore gives back the disk byte for byte; restore only writes what differs."""

import os
import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onbox.errors import ImagingError
from onbox.imaging.backup import DiskStream, backup_disks, backup_streams
from onbox.imaging.restore import restore_image
from onbox.store import ImageStore, MemoryStore, open_store
from tests.unit.imaging.conftest import CS, IP, write_disk

# A disk: runs of zeros, of repetitive text and of random bytes, any total length.
segment = st.one_of(
    st.integers(0, 3 * CS).map(bytes),
    st.tuples(st.binary(min_size=1, max_size=40), st.integers(1, 300)).map(lambda t: t[0] * t[1]),
    st.binary(max_size=2 * CS),
)
disk_content = st.lists(segment, max_size=8).map(b"".join)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=disk_content, backend=st.sampled_from(["fs", "memory"]))
@pytest.mark.slow
def test_roundtrip_is_byte_identical(data: bytes, backend: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store: ImageStore = open_store(root / "backup") if backend == "fs" else MemoryStore()
        source = write_disk(root / "source.img", data)
        report = backup_disks(store, IP, {"sda": source}, chunk_size=CS, workers=2)
        assert report.disks[0].size == len(data)
        # target: garbage of the same size plus a tail that must stay untouched
        target = write_disk(root / "target.img", os.urandom(len(data)) + b"TAIL")
        restore_image(store, IP, "latest", {"sda": target}, workers=2)
        assert target.read_bytes() == data + b"TAIL"


def test_empty_disk(store: ImageStore, tmp_path: Path) -> None:
    report = backup_disks(store, IP, {"sda": write_disk(tmp_path / "e.img", b"")}, chunk_size=CS)
    (info,) = store.list_images(IP)
    assert info.id == report.image_id and info.disks[0].size == 0
    target = write_disk(tmp_path / "t.img", b"")
    assert restore_image(store, IP, report.image_id, {"sda": target}).bytes_written == 0


def test_zero_chunks_are_not_stored(store: ImageStore, tmp_path: Path) -> None:
    disk = write_disk(tmp_path / "z.img", bytes(10 * CS) + b"x")
    backup_disks(store, IP, {"sda": disk}, chunk_size=CS)
    assert len(list(store.chunk_stats())) == 1


def test_second_restore_writes_nothing(store: ImageStore, tmp_path: Path) -> None:
    rng = random.Random(1)
    data = bytes(3 * CS) + rng.randbytes(5 * CS) + b"end"
    backup_disks(store, IP, {"sda": write_disk(tmp_path / "s.img", data)}, chunk_size=CS)
    target = write_disk(tmp_path / "t.img", bytes(len(data)))
    first = restore_image(store, IP, "latest", {"sda": target})
    assert first.disks[0].bytes_written == 5 * CS + 3  # the zero chunks already matched
    second = restore_image(store, IP, "latest", {"sda": target})
    assert second.disks[0].bytes_written == 0
    assert second.disks[0].bytes_skipped == len(data)
    assert target.read_bytes() == data


def test_two_disks_one_image(store: ImageStore, tmp_path: Path) -> None:
    a = write_disk(tmp_path / "a.img", b"a" * (2 * CS + 5))
    b = write_disk(tmp_path / "b.img", b"b" * CS)
    report = backup_disks(store, IP, {"sda": a, "sdb": b}, chunk_size=CS)
    (info,) = store.list_images(IP)
    assert [d.disk for d in info.disks] == ["sda", "sdb"]
    tb = write_disk(tmp_path / "tb.img", bytes(CS))
    restore_image(store, IP, report.image_id, {"sdb": tb})
    assert tb.read_bytes() == b"b" * CS


def test_refuses_small_target_and_unknown_disk(store: ImageStore, tmp_path: Path) -> None:
    backup_disks(store, IP, {"sda": write_disk(tmp_path / "s.img", b"q" * (2 * CS))}, chunk_size=CS)
    small = write_disk(tmp_path / "small.img", b"s" * (2 * CS - 1))
    with pytest.raises(ImagingError, match=r"refusing to restore sda: target .* needs 8192"):
        restore_image(store, IP, "latest", {"sda": small})
    assert small.read_bytes() == b"s" * (2 * CS - 1)
    with pytest.raises(ImagingError, match="has no disk sdb"):
        restore_image(store, IP, "latest", {"sdb": small})


@pytest.mark.parametrize(
    ("ip", "disk", "message"),
    [
        ("10.0.0.256", "sda", "not a box IP address"),
        ("../etc", "sda", "not a box IP address"),
        (IP, "../sda", "not a disk name"),
        (IP, "sda1", "not a disk name"),
    ],
)
def test_bad_names_refused_before_reading(
    store: ImageStore, tmp_path: Path, ip: str, disk: str, message: str
) -> None:
    source = write_disk(tmp_path / "s.img", b"x" * CS)
    with pytest.raises(ImagingError, match=message):
        backup_disks(store, ip, {disk: source}, chunk_size=CS)
    assert store.list_images() == [] and list(store.chunk_stats()) == []


def test_disk_shorter_than_announced_is_not_committed(store: ImageStore) -> None:
    data = iter([b"a" * CS, b""])
    stream = DiskStream(lambda _n: next(data), 3 * CS)
    with pytest.raises(ImagingError, match="changed while it was read"):
        backup_streams(store, IP, {"sda": stream}, chunk_size=CS)
    assert store.list_images() == []
