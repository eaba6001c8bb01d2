"""The restore target's writer: past the page cache where the target takes O_DIRECT, buffered
where it does not, the same bytes either way (onbox.imaging.targetwriter)."""

import os
import random
from pathlib import Path

import pytest

from onbox.imaging.backup import backup_disks
from onbox.imaging.restore import restore_image
from onbox.imaging.targetwriter import ALIGN, TargetWriter
from onbox.store import FilesystemStore

IP = "10.0.0.7"
CS = 64 * 1024
SHM = Path("/dev/shm")


def _writer(path: Path, size: int) -> tuple[TargetWriter, int]:
    with path.open("wb") as f:
        f.truncate(size)
    fd = os.open(path, os.O_RDWR)
    return TargetWriter(path, fd, CS), fd


def test_aligned_writes_go_direct_and_the_rest_buffered(tmp_path: Path) -> None:
    target = tmp_path / "t.img"
    writer, fd = _writer(target, 3 * CS + 1000)
    if not writer.direct:
        pytest.skip(f"{tmp_path} does not take O_DIRECT")
    rng = random.Random(1)
    whole = rng.randbytes(2 * CS)
    odd = rng.randbytes(1000)
    middle = rng.randbytes(ALIGN + 100)  # aligned start, unaligned length
    writer.write(whole, 0)  # twice the writer's buffer: two direct writes
    writer.write(odd, 3 * CS)  # the disk's last partial page
    writer.write(middle, 2 * CS)
    writer.close()
    os.fsync(fd)
    os.close(fd)
    data = target.read_bytes()
    assert data[: 2 * CS] == whole
    assert data[2 * CS : 2 * CS + len(middle)] == middle
    assert data[3 * CS :] == odd
    assert writer.direct_bytes == 2 * CS
    assert writer.buffered_bytes == len(odd) + len(middle)


@pytest.mark.skipif(not SHM.is_dir(), reason="no /dev/shm")
def test_a_target_without_o_direct_is_written_buffered(tmp_path: Path) -> None:
    directory = Path(os.path.realpath(SHM))
    target = directory / f"testbox-writer-{os.getpid()}.img"
    try:
        writer, fd = _writer(target, 2 * CS)
        chunk = random.Random(2).randbytes(2 * CS)
        writer.write(chunk, 0)
        writer.close()
        os.close(fd)
        assert target.read_bytes() == chunk
        assert writer.direct_bytes + writer.buffered_bytes == 2 * CS
    finally:
        target.unlink(missing_ok=True)


@pytest.mark.parametrize("where", ["tmp", "shm"])
def test_restore_is_byte_identical_direct_or_not(tmp_path: Path, where: str) -> None:
    """A disk whose size is no multiple of the page: the tail goes buffered, the rest direct
    (ext4) or everything buffered (tmpfs); the restored disk is the same."""
    if where == "shm" and not SHM.is_dir():
        pytest.skip("no /dev/shm")
    rng = random.Random(3)
    data = rng.randbytes(5 * CS) + bytes(2 * CS) + rng.randbytes(CS + 1536)
    disk = tmp_path / "sda.img"
    disk.write_bytes(data)
    root = tmp_path / "backup"
    root.mkdir()
    image = backup_disks(FilesystemStore(root), IP, {"sda": disk}, chunk_size=CS).image_id
    directory = tmp_path if where == "tmp" else Path(os.path.realpath(SHM))
    target = directory / f"testbox-restore-{os.getpid()}.img"
    try:
        target.write_bytes(rng.randbytes(len(data)))  # garbage where the disk goes
        restore_image(FilesystemStore(root), IP, image, {"sda": target}, workers=2)
        assert target.read_bytes() == data
    finally:
        target.unlink(missing_ok=True)
