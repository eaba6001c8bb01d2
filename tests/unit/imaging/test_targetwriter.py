"""The restore target's writer: past the page cache where the target takes O_DIRECT, buffered
where it does not, the same bytes either way; writes queued behind the caller, and an error of
a queued write raised, not lost (onbox.imaging.targetwriter)."""

import errno
import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from onbox.imaging.backup import backup_disks
from onbox.imaging.restore import PartialRestore, restore_image
from onbox.imaging.targetwriter import ALIGN, TargetWriter
from onbox.store import FilesystemStore
from tests.unit.imaging.conftest import sparse_disk

IP = "10.0.0.7"
CS = 64 * 1024
SHM = Path("/dev/shm")


def _writer(path: Path, size: int, behind: int = 4) -> tuple[TargetWriter, int]:
    fd = os.open(sparse_disk(path, size), os.O_RDWR)
    return TargetWriter(path, fd, CS, behind=behind), fd


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs: a real file system that runs out of space (ENOSPC) part way."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tiny", str(mount)], check=True)
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], check=False).returncode != 0:
            subprocess.run(["umount", "--lazy", str(mount)], check=False)  # never leave it


def test_writes_wait_for_a_free_buffer_and_all_land(tmp_path: Path) -> None:
    """One buffer in flight at most: every write waits for the one before; nothing is lost."""
    target = tmp_path / "t.img"
    writer, fd = _writer(target, 8 * CS, behind=1)
    chunks = [random.Random(index).randbytes(CS) for index in range(8)]
    for index in (3, 0, 7, 1, 6, 2, 5, 4):  # out of order, as the workers finish
        writer.write(chunks[index], index * CS)
    writer.close()
    os.close(fd)
    assert target.read_bytes() == b"".join(chunks)


@pytest.mark.parametrize("where", ["tmp", "shm"])
def test_leased_buffers_write_their_pieces_and_come_back(tmp_path: Path, where: str) -> None:
    """A worker fills a leased buffer and hands it back with the ranges to write (a skip
    image's used ranges, odd sizes among them); with one buffer only, every lease waits for
    the writes of the one before, and nothing outside the pieces is written."""
    if where == "shm" and not SHM.is_dir():
        pytest.skip("no /dev/shm")
    directory = tmp_path if where == "tmp" else Path(os.path.realpath(SHM))
    target = directory / f"testbox-leased-{os.getpid()}.img"
    try:
        writer, fd = _writer(target, 4 * CS, behind=1)
        chunks = [random.Random(10 + index).randbytes(CS) for index in range(4)]
        pieces = [(0, ALIGN), (ALIGN, 3 * ALIGN + 100), (CS - 700, CS)]  # aligned, odd, tail
        for index in (2, 0, 3, 1):
            buf = writer.lease()
            buf[:CS] = chunks[index]
            writer.write_leased(buf, [(s, e, index * CS + s) for s, e in pieces])
        unused = writer.lease()
        writer.give_back(unused)  # a chunk found bad: its buffer is free again, nothing written
        writer.close()
        os.close(fd)
        data = target.read_bytes()
        for index, chunk in enumerate(chunks):
            expected = bytearray(CS)
            for start, stop in pieces:
                expected[start:stop] = chunk[start:stop]
            assert data[index * CS : (index + 1) * CS] == expected
        assert writer.direct_bytes + writer.buffered_bytes == 4 * (3 * ALIGN + 800)
    finally:
        target.unlink(missing_ok=True)


def test_a_failed_queued_write_is_raised_not_lost(tiny_tmpfs: Path) -> None:
    writer, fd = _writer(tiny_tmpfs / "t.img", 16 * CS)
    data = random.Random(4).randbytes(16 * CS)  # 1 MiB onto 256 KiB
    try:
        with pytest.raises(OSError) as caught:
            writer.write(data, 0)  # queued (O_DIRECT) or written at once (buffered)
            writer.close()
        assert caught.value.errno == errno.ENOSPC
        # The writer stays failed: a later write or lease, and close() again (the restore's
        # cleanup).
        with pytest.raises(OSError, match="No space left"):
            writer.write(data[:CS], 0)
        with pytest.raises(OSError, match="No space left"):
            writer.lease()
        with pytest.raises(OSError, match="No space left"):
            writer.close()
    finally:
        os.close(fd)


def test_an_unexpected_failure_in_the_writer_thread_is_not_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not an OSError (a bug, say): the restore must still fail, never report success."""
    writer, fd = _writer(tmp_path / "t.img", 2 * CS)
    if not writer.direct:
        pytest.skip(f"{tmp_path} does not take O_DIRECT")

    def broken(*_args: object) -> int:
        raise ValueError("simulated")

    monkeypatch.setattr("onbox.imaging.targetwriter.os.pwrite", broken)
    try:
        writer.write(bytes(CS), 0)
        with pytest.raises(OSError, match="target writer failed: ValueError: simulated"):
            writer.close()
    finally:
        os.close(fd)


def test_a_restore_that_cannot_write_says_the_disk_is_partial(
    tmp_path: Path, tiny_tmpfs: Path
) -> None:
    disk = tmp_path / "sda.img"
    disk.write_bytes(random.Random(5).randbytes(16 * CS))
    root = tmp_path / "backup"
    root.mkdir()
    image = backup_disks(FilesystemStore(root), IP, {"sda": disk}, chunk_size=CS).image_id
    target = sparse_disk(tiny_tmpfs / "sda.img", 16 * CS)
    with pytest.raises(PartialRestore) as caught:
        restore_image(FilesystemStore(root), IP, image, {"sda": target}, workers=2)
    assert caught.value.disks == ["sda"]
    assert "No space left on device" in caught.value.message
    assert "partially restored" in caught.value.message


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
