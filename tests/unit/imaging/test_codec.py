"""A chunk decompressed into a caller's buffer is accepted only when it fills the buffer exactly
and hashes to its name (onbox.imaging.codec.checked_into): the restore writes from that buffer."""

import random

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from onbox.errors import IntegrityError
from onbox.imaging import codec

DATA = random.Random(11).randbytes(20_000) + bytes(30_000) + b"text " * 3000
CID = codec.chunk_id(DATA)


def _no_size_frame(data: bytes) -> bytes:
    """A frame without its content size in the header, as a streaming writer makes it."""
    obj = zstandard.ZstdCompressor(write_content_size=False).compressobj()
    return obj.compress(data) + obj.flush()


@pytest.mark.parametrize(
    ("blob", "problem"),
    [
        (codec.compress(DATA), None),
        (_no_size_frame(DATA), None),  # decoded through zstd's window, same bytes
        (codec.compress(DATA + b"x"), "does not hash to its name"),  # longer than the buffer
        (codec.compress(DATA[:-1]), "does not hash to its name"),  # shorter
        (codec.compress(DATA[::-1]), "does not hash to its name"),  # right length, wrong bytes
        (b"not zstd at all", "cannot decompress"),
        (codec.compress(DATA)[:-9], "cannot decompress|does not hash"),  # truncated frame
    ],
    ids=["exact", "no-size-header", "longer", "shorter", "other-bytes", "garbage", "truncated"],
)
def test_checked_into_accepts_only_the_named_bytes(blob: bytes, problem: str | None) -> None:
    out = memoryview(bytearray(len(DATA)))
    if problem is None:
        codec.checked_into(blob, CID, out, "sda offset 0")
        assert out == DATA
        return
    with pytest.raises(IntegrityError, match=f"sda offset 0: .*({problem})"):
        codec.checked_into(blob, CID, out, "sda offset 0")


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=1, max_size=70_000), st.integers(min_value=1, max_value=19))
def test_checked_into_round_trips_every_chunk(data: bytes, level: int) -> None:
    out = memoryview(bytearray(len(data)))
    codec.checked_into(codec.compress(data, level), codec.chunk_id(data), out, "chunk")
    assert bytes(out) == data
