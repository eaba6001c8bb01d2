"""The synthetic disk of the imaging benchmark (issue 3).

32 MiB segments repeating zero / system files / zero / system files / random: 40% zeros, 40%
compressible, 20% incompressible. "System files" are the bytes of the machine's own /usr files
(binaries, libraries, text) concatenated in a fixed order, so the data compresses like an OS
disk; when /usr runs out the stream restarts at an odd offset so no chunk repeats exactly.
"""

import os
import random
from collections.abc import Iterator
from pathlib import Path

SEGMENT = 32 * 1024 * 1024
PATTERN = ("zero", "system", "zero", "system", "random")


def _usr_files() -> Iterator[Path]:
    for top in ("/usr/lib", "/usr/bin", "/usr/share", "/usr/libexec", "/usr/sbin"):
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            for name in sorted(filenames):
                path = Path(dirpath, name)
                if path.is_file() and not path.is_symlink():
                    yield path


class SystemBytes:
    """An endless stream of real system-file bytes."""

    def __init__(self) -> None:
        self._files = _usr_files()
        self._buffer = bytearray()
        self._round = 0

    def _refill(self) -> None:
        for path in self._files:
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if len(data) >= 4096:
                self._buffer += data
                return
        self._round += 1
        self._files = _usr_files()
        self._buffer += b"\x01" * (self._round * 4099 % 65536 + 1)

    def take(self, n: int) -> bytes:
        while len(self._buffer) < n:
            self._refill()
        out = bytes(self._buffer[:n])
        del self._buffer[:n]
        return out


def segment_kind(index: int) -> str:
    return PATTERN[index % len(PATTERN)]


def make_disk(path: Path, size: int, seed: int = 1) -> dict[str, int]:
    """Write the synthetic disk; returns bytes per kind."""
    rng = random.Random(seed)
    system = SystemBytes()
    totals = {"zero": 0, "system": 0, "random": 0}
    zero = bytes(SEGMENT)
    with open(path, "wb") as f:
        index = written = 0
        while written < size:
            n = min(SEGMENT, size - written)
            kind = segment_kind(index)
            if kind == "zero":
                f.write(zero[:n])
            elif kind == "system":
                f.write(system.take(n))
            else:
                f.write(rng.randbytes(n))
            totals[kind] += n
            written += n
            index += 1
    return totals


def change_chunks(path: Path, chunk_size: int, fraction: float, seed: int = 2) -> int:
    """Rewrite 64 KiB of new random bytes in `fraction` of the chunks (at least one), spread by a
    seeded RNG over the whole disk: small writes scattered like an OS update. Returns the count."""
    rng = random.Random(seed)
    size = path.stat().st_size
    chunks = -(-size // chunk_size)
    count = max(1, round(chunks * fraction))
    with open(path, "r+b") as f:
        for index in rng.sample(range(chunks), count):
            length = min(chunk_size, size - index * chunk_size)
            offset = index * chunk_size + rng.randrange(0, max(1, length - 65536)) // 4096 * 4096
            f.seek(offset)
            f.write(rng.randbytes(min(65536, size - offset)))
    return count
