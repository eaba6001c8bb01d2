"""The on-disk records of an image: one manifest per disk and the commit record.

A manifest lists a disk's chunks in order (SHA-256 hex of the uncompressed bytes, or `None` for
an all-zero chunk, which is recorded but never stored). The commit record names the image's
disks with the SHA-256 of each manifest file, so a manifest swapped or damaged after the commit
is detected, and it is written last: a directory under `images/` without `commit.json` is an
interrupted backup, never an image.
"""

import bisect
import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

from pydantic import AwareDatetime, Field, field_validator, model_validator

from schema.base import ContractModel
from schema.image import ImageDisk, ImageInfo
from schema.types import DiskName, FreeSpace, ImageId, IPv4

RECORD_FORMAT: Literal[1] = 1
COMMIT_FILE = "commit.json"
MANIFEST_SUFFIX = ".manifest.json"
DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024
# A record names the chunk size; a bound keeps a hostile one from asking for a huge buffer.
MAX_CHUNK_SIZE = 64 * 1024 * 1024

CHUNK_ID = re.compile(r"^[0-9a-f]{64}$")
# 20261125T200102Z-3f9a1c: UTC second, then 6 random hex digits so two images in one second differ.
IMAGE_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$")


def new_image_id(now: datetime) -> str:
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def is_chunk_id(value: str) -> bool:
    return bool(CHUNK_ID.fullmatch(value))


def chunk_ranges(
    used: Sequence[tuple[int, int]], offset: int, length: int
) -> list[tuple[int, int]]:
    """The parts of sorted, disjoint `used` ranges within [offset, offset+length), relative."""
    end = offset + length
    index = bisect.bisect_right(used, (offset, offset))
    if index and used[index - 1][1] > offset:
        index -= 1  # the range before starts earlier but reaches into this one
    out: list[tuple[int, int]] = []
    while index < len(used) and used[index][0] < end:
        start, stop = used[index]
        if stop > offset:
            out.append((max(start, offset) - offset, min(stop, end) - offset))
        index += 1
    return out


class DiskManifest(ContractModel):
    """`<ip>/images/<id>/<disk>.manifest.json`: the disk as an ordered list of chunk ids."""

    format: Literal[1] = RECORD_FORMAT
    disk: DiskName
    size: int = Field(ge=0)
    chunk_size: int = Field(gt=0, le=MAX_CHUNK_SIZE)
    # One entry per chunk; None = all zeros (never stored). The last chunk may be short.
    chunks: list[str | None]
    # free_space: skip with a used-block map: the byte ranges [start, end) that were imaged
    # (sorted, disjoint); bytes outside them were free, are stored as zeros and need not be
    # restored. None (raw, and every manifest made before the field existed): all bytes count.
    free_space: FreeSpace = "raw"
    used: list[tuple[int, int]] | None = None

    @model_validator(mode="after")
    def _used_ranges(self) -> "DiskManifest":
        if self.used is None:
            if self.free_space == "skip":
                raise ValueError("free_space skip needs its used ranges")
            return self
        if self.free_space != "skip":
            raise ValueError("used ranges only with free_space skip")
        position = 0
        for start, end in self.used:
            if not position <= start < end <= self.size:
                raise ValueError(f"used range [{start}, {end}) out of order or beyond the disk")
            position = end + 1  # merged: touching ranges would have been one
        for index, cid in enumerate(self.chunks):
            if cid is not None and not self.chunk_used(index):
                raise ValueError(f"chunk {index}: stored although no byte of it is used")
        return self

    @field_validator("chunks")
    @classmethod
    def _ids(cls, chunks: list[str | None]) -> list[str | None]:
        for index, cid in enumerate(chunks):
            if cid is not None and not CHUNK_ID.fullmatch(cid):
                raise ValueError(f"chunk {index}: not a SHA-256 hex id: {cid!r}")
        return chunks

    def expected_chunks(self) -> int:
        return -(-self.size // self.chunk_size)

    def chunk_length(self, index: int) -> int:
        return min(self.chunk_size, self.size - index * self.chunk_size)

    def chunk_used(self, index: int) -> list[tuple[int, int]] | None:
        """Used ranges of chunk `index`, relative to its start; None = all of it (raw)."""
        if self.used is None:
            return None
        return chunk_ranges(self.used, index * self.chunk_size, self.chunk_length(index))

    def free_bytes(self) -> int:
        return 0 if self.used is None else self.size - sum(e - s for s, e in self.used)

    def stored_ids(self) -> set[str]:
        return {c for c in self.chunks if c is not None}

    def disagreement(self, disk: "CommitDisk") -> str | None:
        """Why this manifest cannot be the one its commit record describes (None: it can)."""
        if self.disk != disk.disk:
            return f"manifest names disk {self.disk}, the commit record {disk.disk}"
        if (self.size, self.chunk_size) != (disk.size, disk.chunk_size):
            return (
                f"manifest says {self.size} bytes in chunks of {self.chunk_size}, the commit "
                f"record {disk.size} in chunks of {disk.chunk_size}"
            )
        if len(self.chunks) != self.expected_chunks():
            return (
                f"manifest lists {len(self.chunks)} chunks, its size of {self.size} bytes "
                f"needs {self.expected_chunks()}"
            )
        if len(self.chunks) != disk.chunks:
            return f"manifest lists {len(self.chunks)} chunks, the commit record {disk.chunks}"
        return None


class CommitDisk(ContractModel):
    disk: DiskName
    size: int = Field(ge=0)
    chunk_size: int = Field(gt=0, le=MAX_CHUNK_SIZE)
    chunks: int = Field(ge=0)
    zero_chunks: int = Field(ge=0)
    # Compressed bytes of this disk's distinct chunks as stored (shared chunks counted too).
    stored_bytes: int = Field(ge=0)
    manifest_sha256: str
    # Chunks with no used block (free_space: skip): neither read nor stored.
    free_chunks: int = Field(default=0, ge=0)


class CommitRecord(ContractModel):
    """`<ip>/images/<id>/commit.json`: written last, atomically; its presence makes the image."""

    format: Literal[1] = RECORD_FORMAT
    id: ImageId
    box_ip: IPv4
    created: AwareDatetime  # a naive time is damage: the box's clock zone is unknown
    disks: list[CommitDisk]
    free_space: FreeSpace = "raw"  # the policy the backup ran with (old records: raw)

    @field_validator("disks")
    @classmethod
    def _distinct(cls, disks: list[CommitDisk]) -> list[CommitDisk]:
        names = [d.disk for d in disks]
        if len(set(names)) != len(names):
            raise ValueError("a disk is named twice")
        return disks

    def info(self) -> ImageInfo:
        return ImageInfo(
            id=self.id,
            box_ip=self.box_ip,
            created=self.created,
            kind="chunked",
            disks=[
                ImageDisk(disk=d.disk, size=d.size, stored_bytes=d.stored_bytes) for d in self.disks
            ],
            free_space=self.free_space,
        )
