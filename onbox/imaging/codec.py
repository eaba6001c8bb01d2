"""Chunk naming and compression: SHA-256 of the uncompressed bytes, zstd for storage.

Both hashlib (for buffers over 2 KiB) and python-zstandard release the GIL, so worker threads
hash and compress in parallel. A zstd (de)compressor object must not be shared between threads,
so each thread gets its own.
"""

import hashlib
import threading

import zstandard

from onbox.errors import IntegrityError

# Chosen by benchmarks/imaging.py (docs/images.md): of the levels meeting the backup speed
# targets, level 3 stores least (3% under gzip -6); level 1 stores more than gzip, 6 is too slow.
DEFAULT_LEVEL = 3

_local = threading.local()
_zero_cache: dict[int, bytes] = {}
_zero_lock = threading.Lock()


def chunk_id(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def zeros(length: int) -> bytes:
    """A shared all-zero buffer of `length` bytes (one per distinct length)."""
    buf = _zero_cache.get(length)
    if buf is None:
        with _zero_lock:
            buf = _zero_cache.setdefault(length, bytes(length))
    return buf


def is_zero(data: bytes) -> bool:
    return data == zeros(len(data))


def compress(data: bytes, level: int = DEFAULT_LEVEL) -> bytes:
    compressors: dict[int, zstandard.ZstdCompressor] | None = getattr(_local, "c", None)
    if compressors is None:
        compressors = _local.c = {}
    compressor = compressors.get(level)
    if compressor is None:
        compressor = compressors[level] = zstandard.ZstdCompressor(level=level, write_checksum=True)
    result: bytes = compressor.compress(data)
    return result


def _decompressor() -> zstandard.ZstdDecompressor:
    """This thread's decompressor (one must not be shared between threads)."""
    decompressor: zstandard.ZstdDecompressor | None = getattr(_local, "d", None)
    if decompressor is None:
        decompressor = _local.d = zstandard.ZstdDecompressor()
    return decompressor


def decompress(blob: bytes, expected_length: int, what: str) -> bytes:
    """Decompress one chunk; IntegrityError (naming `what`) when the blob is damaged."""
    decompressor = _decompressor()
    try:
        data: bytes = decompressor.decompress(blob, max_output_size=max(expected_length, 1))
    except zstandard.ZstdError as exc:
        raise IntegrityError(f"{what}: cannot decompress: {exc}") from None
    return data


def decompress_into(blob: bytes, out: memoryview, what: str) -> int:
    """Decompress one chunk straight into `out` and return its length: at most len(out), or
    len(out) + 1 for a chunk longer than `out` (IntegrityError naming `what` when the blob is
    damaged). Only the first frame counts, as in `decompress`; the hash check decides."""
    decompressor = _decompressor()
    try:
        # The whole blob as input and room for the whole frame: zstd decodes in one pass
        # into `out`, no copy through its window.
        with decompressor.stream_reader(
            blob, read_size=max(len(blob), 1), read_across_frames=False
        ) as reader:
            done = 0
            while done < len(out):
                step = reader.readinto(out[done:])
                if step <= 0:
                    return done
                done += step
            return done + (1 if reader.read(1) else 0)
    except zstandard.ZstdError as exc:
        raise IntegrityError(f"{what}: cannot decompress: {exc}") from None


def checked_into(blob: bytes, cid: str, out: memoryview, what: str) -> None:
    """`checked`, decompressing into `out`, which the chunk must fill exactly."""
    if decompress_into(blob, out, what) != len(out) or chunk_id(out) != cid:
        raise IntegrityError(f"{what}: chunk {cid} does not hash to its name")


def checked(blob: bytes, cid: str, expected_length: int, what: str) -> bytes:
    """The chunk's bytes, after checking they hash to its id and have the expected length."""
    data = decompress(blob, expected_length, what)
    if len(data) != expected_length or chunk_id(data) != cid:
        raise IntegrityError(f"{what}: chunk {cid} does not hash to its name")
    return data
