"""DataMap on real sparse files: holes are known without reading, data never taken for a hole."""

import os
from pathlib import Path

import pytest

from onbox.imaging import targetmap
from onbox.imaging.targetmap import DataMap

MIB = 1 << 20


def _sparse(path: Path, size: int, data_at: list[int]) -> int:
    """A sparse file of `size` bytes with 4 KiB of data at each offset; its open descriptor."""
    with open(path, "wb") as f:
        f.truncate(size)
        for offset in data_at:
            f.seek(offset)
            f.write(b"\xaa" * 4096)
    return os.open(path, os.O_RDONLY)


def _knows_holes(fd: int, size: int) -> bool:
    try:
        return os.lseek(fd, 0, os.SEEK_HOLE) < size
    except OSError:
        return False


def test_a_fresh_file_is_one_hole(tmp_path: Path) -> None:
    fd = _sparse(tmp_path / "t.img", 16 * MIB, [])
    try:
        if not _knows_holes(fd, 16 * MIB):
            pytest.skip("this file system does not report holes")
        data_map = DataMap.of(fd, 16 * MIB)
        assert all(data_map.is_hole(i * MIB, MIB) for i in range(16))
    finally:
        os.close(fd)


@pytest.mark.parametrize("data_at", [[0], [5 * MIB + 8192], [15 * MIB + 4096], [MIB, 9 * MIB]])
def test_a_chunk_with_any_data_is_not_a_hole(tmp_path: Path, data_at: list[int]) -> None:
    size = 16 * MIB
    fd = _sparse(tmp_path / "t.img", size, data_at)
    try:
        if not _knows_holes(fd, size):
            pytest.skip("this file system does not report holes")
        data_map = DataMap.of(fd, size)
        for i in range(16):
            has_data = any(i * MIB <= at < (i + 1) * MIB for at in data_at)
            # A file system may report more as data than was written (its block size), never less.
            if has_data:
                assert not data_map.is_hole(i * MIB, MIB), i
        assert sum(data_map.is_hole(i * MIB, MIB) for i in range(16)) >= 16 - 2 * len(data_at)
    finally:
        os.close(fd)


def test_data_past_the_image_size_is_ignored(tmp_path: Path) -> None:
    fd = _sparse(tmp_path / "t.img", 16 * MIB, [12 * MIB])
    try:
        if not _knows_holes(fd, 16 * MIB):
            pytest.skip("this file system does not report holes")
        assert DataMap.of(fd, 8 * MIB).is_hole(0, 8 * MIB)
    finally:
        os.close(fd)


def test_too_many_ranges_count_as_all_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(targetmap, "MAX_RANGES", 2)
    fd = _sparse(tmp_path / "t.img", 16 * MIB, [0, 4 * MIB, 8 * MIB, 12 * MIB])
    try:
        data_map = DataMap.of(fd, 16 * MIB)
        assert not any(data_map.is_hole(i * MIB, MIB) for i in range(16))
    finally:
        os.close(fd)


def test_a_descriptor_that_cannot_seek_data_counts_as_all_data(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()  # lseek fails (ESPIPE): not a hole anywhere
    try:
        data_map = DataMap.of(read_end, 4 * MIB)
        assert not data_map.is_hole(0, MIB)
        assert not data_map.is_hole(3 * MIB, MIB)
    finally:
        os.close(read_end)
        os.close(write_end)


def test_all_data_and_empty() -> None:
    assert not DataMap.all_data(4 * MIB).is_hole(MIB, 1)
    assert DataMap([]).is_hole(0, MIB)
    ranges = DataMap([(MIB, 2 * MIB)])
    assert ranges.is_hole(0, MIB)  # ends where the data starts
    assert ranges.is_hole(2 * MIB, MIB)  # starts where the data ends
    assert not ranges.is_hole(MIB - 1, 2)
