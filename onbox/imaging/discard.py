"""Discard (BLKDISCARD) the free ranges of a `free_space: skip` image on a restored block device.

Why: a skip restore leaves the blocks no filesystem uses as they were; on an SSD or thin
(virtual) storage telling the device they are unused lets it reclaim them (wear levelling, the
thin pool's space), as `fstrim` would after the restore. It is an optimisation only: the
filesystem does not read those blocks, so the restore is correct with or without it, and
nothing here ever fails a restore.

What may be discarded is decided by the manifest alone and kept narrow:
- only a block device, only an image made with `free_space: skip` (a raw image has no free
  ranges: every byte is the image's), only ranges the manifest records as free, never bytes
  beyond the image (a larger target keeps the rest);
- each range shrinks inward to the device's alignment (at least 4 KiB, and its logical block
  size and discard granularity), so a used byte never shares a discarded block;
- a device whose queue says it cannot discard (`discard_max_bytes` 0) is left alone, and the
  first EOPNOTSUPP / ENOTTY / EINVAL stops discarding quietly; any other error stops it with a
  note. The caller logs the one-line outcome.
"""

import errno
import fcntl
import os
import stat
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

BLKDISCARD = 0x12 << 8 | 119  # _IO(0x12, 119); argument: uint64 start, uint64 length
PAGE = 4096
MAX_PER_CALL = 1 << 30  # one ioctl blocks until the device is done; keep each call bounded
_UNSUPPORTED = {errno.EOPNOTSUPP, errno.ENOTTY, errno.EINVAL}


@dataclass(frozen=True)
class Discarded:
    """How many bytes were discarded, and a line for the log ("" when nothing was tried)."""

    bytes: int
    note: str


def discard_free_ranges(
    fd: int, free: Sequence[tuple[int, int]], *, sys_root: Path = Path("/sys")
) -> Discarded:
    """BLKDISCARD every range of `free` (byte offsets, sorted) on the block device `fd`.
    Never raises: the outcome, good or bad, is the returned note."""
    if not free:
        return Discarded(0, "")
    try:
        st = os.fstat(fd)
    except OSError:
        return Discarded(0, "")
    if not stat.S_ISBLK(st.st_mode):
        return Discarded(0, "")
    queue = _queue(st.st_rdev, sys_root)
    if queue is None or _read_int(queue / "discard_max_bytes") <= 0:
        return Discarded(0, "target does not support discard; free space left as it was")
    align = max(
        PAGE,
        _read_int(queue / "logical_block_size"),
        min(_read_int(queue / "discard_granularity"), 16 * 1024 * 1024),
    )
    done = 0
    started = time.monotonic()
    for start, end in free:
        position = -(-start // align) * align
        stop = end // align * align
        while position < stop:
            length = min(stop - position, MAX_PER_CALL)
            try:
                fcntl.ioctl(fd, BLKDISCARD, struct.pack("QQ", position, length))
            except OSError as exc:
                if exc.errno in _UNSUPPORTED and done == 0:
                    return Discarded(0, "target refused discard; free space left as it was")
                return Discarded(
                    done, f"discard stopped after {_mib(done)}: {exc.strerror or exc.errno}"
                )
            position += length
            done += length
    seconds = time.monotonic() - started
    return Discarded(done, f"discarded {_mib(done)} of free space (BLKDISCARD, {seconds:.1f} s)")


def _queue(rdev: int, sys_root: Path) -> Path | None:
    """The request queue directory of a block device (a partition's is its disk's)."""
    node = sys_root / "dev" / "block" / f"{os.major(rdev)}:{os.minor(rdev)}"
    for candidate in (node / "queue", node / ".." / "queue"):
        if candidate.is_dir():
            return candidate
    return None


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"
