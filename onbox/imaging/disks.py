"""Disks as the engine sees them: a block device or a plain file, read and written by offset."""

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from onbox.errors import ImagingError

Reader = Callable[[int], bytes]


def disk_size(path: Path) -> int:
    """Size in bytes of a block device or file (seek to the end works for both)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise ImagingError(f"cannot open disk {path}: {exc.strerror}") from None
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


def read_exactly(read: Reader, length: int) -> bytes:
    """Up to `length` bytes; short only at the end of the stream (pipes return short reads)."""
    data = read(length)
    if len(data) == length or not data:
        return data
    parts = [data]
    got = len(data)
    while got < length:
        more = read(length - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def chunks(read: Reader, chunk_size: int) -> Iterator[bytes]:
    """Consecutive chunks of `chunk_size` bytes; the last one may be short; none when empty."""
    while True:
        data = read_exactly(read, chunk_size)
        if not data:
            return
        yield data
        if len(data) < chunk_size:
            return
