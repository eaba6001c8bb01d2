"""Where a restore target holds data, learned once before the first write.

A hole of a sparse target reads as zeros, so a chunk that falls in one is known without reading
it: a restore onto a fresh disk image file (a VM's disk, a new sparse file) then reads nothing
of its target. `SEEK_DATA`/`SEEK_HOLE` say where the holes are (what `cp --sparse` relies on,
page cache included).

Why once, and not per chunk: asking per chunk from the restore's worker threads took 0.36 to
0.58 s of thread time per GiB on ext4 (measured, 4 workers), because `lseek` waits for the
inode lock that the concurrent O_DIRECT writes into the same file hold. The map is taken before
any worker writes, and stays true for every chunk not yet written: each chunk's range is
written only by the worker that asked about it, after asking.

A block device, or a file system that does not know holes, reports all of it as data (one
range), and every chunk is read as before.
"""

import bisect
import errno
import os

# A target with more separate data ranges than this (a badly fragmented image file) is taken
# as all data: past it, the walk costs more syscalls than it saves reads.
MAX_RANGES = 65536


class DataMap:
    """The target's data ranges [start, end) within its first `size` bytes."""

    def __init__(self, ranges: list[tuple[int, int]]) -> None:
        self._starts = [start for start, _end in ranges]
        self._ends = [end for _start, end in ranges]

    @classmethod
    def of(cls, fd: int, size: int) -> "DataMap":
        ranges: list[tuple[int, int]] = []
        offset = 0
        while offset < size:
            try:
                start = os.lseek(fd, offset, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # no data at or after offset
                    break
                return cls.all_data(size)  # SEEK_DATA not supported here
            if start >= size:
                break
            try:
                end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
            except OSError:
                return cls.all_data(size)
            ranges.append((start, end))
            if len(ranges) > MAX_RANGES:
                return cls.all_data(size)
            offset = end
        return cls(ranges)

    @classmethod
    def all_data(cls, size: int) -> "DataMap":
        return cls([(0, size)] if size > 0 else [])

    def is_hole(self, offset: int, length: int) -> bool:
        """Whether [offset, offset + length) holds no data (reads as zeros)."""
        # The last range starting before the end of ours is the only one that can overlap it.
        i = bisect.bisect_left(self._starts, offset + length) - 1
        return i < 0 or self._ends[i] <= offset
