"""Imaging tests run on both store backends; disks are plain files in tmp_path."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from onbox.store import ImageStore, MemoryStore, open_store

IP = "10.0.0.5"
CS = 4096  # small chunks keep the tests fast; the engine does not care


@pytest.fixture(params=["fs", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ImageStore]:
    if request.param == "fs":
        root = tmp_path / "backup"
        root.mkdir()
        (root / "testbox-backup").touch()
        yield open_store(root)
    else:
        yield MemoryStore()


def write_disk(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def sparse_disk(path: Path, size: int) -> Path:
    """A fresh disk image file: `size` bytes, all of it one hole (reads as zeros)."""
    with path.open("wb") as f:
        f.truncate(size)
    return path
