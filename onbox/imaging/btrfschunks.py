"""Where a btrfs keeps its metadata on the device: the chunk map, read straight from disk.

Why this exists: partclone.btrfs (Debian's 0.3.23) marks only the *first* copy of every tree
block used. A single-device btrfs keeps metadata and system chunks DUP by default (two copies
on the one device), so its map calls the second copy free; restoring that map leaves garbage in
every second copy (found by `btrfs scrub`, and lost redundancy the box had before). Upstream
fixed it after 0.3.23 (partclone issue #270). Its metadata walk is shaky besides (inner tree
nodes are marked with an uninitialised length). So `free_space: skip` does not trust partclone
with metadata at all: every stripe of every chunk that is not plain single-copy data is kept
whole, and partclone's map only decides which parts of the data chunks are free.

This module reads the superblock and the chunk tree (the sys_chunk_array in the superblock
locates the chunk tree's own blocks) and returns the chunks with their device stripes. Every
block read is checked: superblock and tree blocks by their crc32c checksum, tree blocks also by
their address, filesystem id and level. Anything unexpected (another checksum type, a
multi-device filesystem, a RAID profile, a block that does not check out, more blocks than a
chunk tree of any sane filesystem has) raises `ImagingError`, and the partition is then imaged
raw. Reads are bounded; nothing is written.
"""

import os
import struct
from dataclasses import dataclass

from onbox.errors import ImagingError

SUPER_OFFSET = 0x10000
SUPER_SIZE = 4096
MAGIC = b"_BHRfS_M"
# Copies of the superblock (the third only on devices over 256 GiB).
SUPER_MIRRORS = (SUPER_OFFSET, 64 * 1024 * 1024, 256 * 1024**3)

CHUNK_ITEM_KEY = 228
BLOCK_GROUP_DATA = 0x1
BLOCK_GROUP_SYSTEM = 0x2
BLOCK_GROUP_METADATA = 0x4
BLOCK_GROUP_DUP = 0x20
# Profiles other than single and DUP (RAID0, RAID1, RAID10, RAID5, RAID6, RAID1C3, RAID1C4):
# they spread a chunk over several devices or stripes; not mapped here.
BLOCK_GROUP_OTHER_PROFILES = 0x8 | 0x10 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400
# Incompat features whose on-disk layout this reader and partclone 0.3.23 know: mixed
# backrefs, default subvolume, mixed block groups, lzo, zstd, big metadata, extended irefs,
# skinny metadata, no-holes, metadata uuid. Not: RAID5/6, RAID1C34, zoned, extent tree v2.
KNOWN_INCOMPAT = 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x20 | 0x40 | 0x100 | 0x200 | 0x400
INCOMPAT_METADATA_UUID = 0x400
MAX_TREE_BLOCKS = 4096  # a chunk tree of 64 MiB of 16 KiB nodes: far beyond any real one
HEADER = 101  # tree block header: csum, fsid, bytenr, flags, chunk tree uuid, gen, owner, n, level


@dataclass(frozen=True)
class Chunk:
    """One chunk: logical start and length, block-group type bits, device offsets of its copies."""

    logical: int
    length: int
    type: int
    stripes: tuple[int, ...]

    @property
    def plain_data(self) -> bool:
        """Data only, one copy: the only chunks whose free parts partclone's map may decide."""
        return (
            self.type & (BLOCK_GROUP_SYSTEM | BLOCK_GROUP_METADATA) == 0
            and self.type & BLOCK_GROUP_DATA != 0
            and len(self.stripes) == 1
        )


@dataclass(frozen=True)
class Btrfs:
    """What the mapper needs of one btrfs: its size, and every chunk."""

    total_bytes: int
    chunks: list[Chunk]

    def keep(self) -> list[tuple[int, int]]:
        """Device ranges that must stay used whatever partclone says: the first MiB (boot
        code, superblock), the superblock copies, every copy of every non-data chunk."""
        ranges = [(0, 1024 * 1024)]
        ranges += [(m, m + SUPER_SIZE) for m in SUPER_MIRRORS if m + SUPER_SIZE <= self.total_bytes]
        for chunk in self.chunks:
            if not chunk.plain_data:
                ranges += [(s, s + chunk.length) for s in chunk.stripes]
        return ranges


def superblock_problem(sb: bytes) -> str:
    """Why a btrfs with superblock `sb` cannot be mapped ("" if it can), from fields alone."""
    if len(sb) < SUPER_SIZE or sb[0x40:0x48] != MAGIC:
        return "no btrfs superblock"
    (log_root,) = struct.unpack_from("<Q", sb, 0x60)
    (num_devices,) = struct.unpack_from("<Q", sb, 0x88)
    (incompat,) = struct.unpack_from("<Q", sb, 0xBC)
    (csum_type,) = struct.unpack_from("<H", sb, 0xC4)
    if csum_type != 0:
        return f"btrfs checksum type {csum_type} (only crc32c is read here)"
    if crc32c(sb[32:SUPER_SIZE]) != sb[:4]:
        return "btrfs superblock checksum wrong"
    if num_devices != 1:
        return f"btrfs on {num_devices} devices"
    if log_root != 0:
        # fsync'd changes not yet committed live in the log tree, which partclone does not map.
        return "btrfs with a log tree to replay (not cleanly unmounted)"
    if incompat & ~KNOWN_INCOMPAT:
        return f"btrfs with unknown incompat features {incompat & ~KNOWN_INCOMPAT:#x}"
    return ""


def read_btrfs(fd: int, start: int, size: int) -> Btrfs:
    """The chunks of the btrfs in [start, start+size) of `fd`; ImagingError if anything is off."""
    sb = os.pread(fd, SUPER_SIZE, start + SUPER_OFFSET)
    problem = superblock_problem(sb)
    if problem:
        raise ImagingError(problem)
    (total_bytes,) = struct.unpack_from("<Q", sb, 0x70)
    (chunk_root,) = struct.unpack_from("<Q", sb, 0x58)
    (nodesize,) = struct.unpack_from("<I", sb, 0x94)
    (sys_size,) = struct.unpack_from("<I", sb, 0xA0)
    (incompat,) = struct.unpack_from("<Q", sb, 0xBC)
    chunk_level = sb[0xC7]
    (devid,) = struct.unpack_from("<Q", sb, 0xC9)  # dev_item.devid: this device
    fsid = sb[0x23B:0x24B] if incompat & INCOMPAT_METADATA_UUID else sb[0x20:0x30]
    if total_bytes > size:
        raise ImagingError(f"btrfs of {total_bytes} bytes in a partition of {size}")
    if nodesize not in (4096, 8192, 16384, 32768, 65536) or sys_size > 2048:
        raise ImagingError("btrfs superblock with impossible sizes")

    chunks: dict[int, Chunk] = {}
    for chunk in _sys_chunks(sb[0x32B : 0x32B + sys_size], devid):
        chunks[chunk.logical] = chunk

    def physical(logical: int) -> int:
        for chunk in chunks.values():
            if chunk.logical <= logical and logical + nodesize <= chunk.logical + chunk.length:
                return chunk.stripes[0] + logical - chunk.logical
        raise ImagingError(f"btrfs chunk tree block {logical} is in no known chunk")

    todo = [(chunk_root, chunk_level)]
    seen = 0
    while todo:
        logical, level = todo.pop()
        seen += 1
        if seen > MAX_TREE_BLOCKS:
            raise ImagingError("btrfs chunk tree larger than any sane one")
        offset = physical(logical)
        if offset + nodesize > total_bytes:
            raise ImagingError(f"btrfs chunk tree block {logical} beyond the filesystem")
        block = os.pread(fd, nodesize, start + offset)
        if len(block) != nodesize or crc32c(block[32:]) != block[:4]:
            raise ImagingError(f"btrfs chunk tree block {logical}: checksum wrong")
        (bytenr,) = struct.unpack_from("<Q", block, 48)
        (nritems,) = struct.unpack_from("<I", block, 96)
        if bytenr != logical or block[32:48] != fsid or block[100] != level:
            raise ImagingError(f"btrfs chunk tree block {logical}: not the block expected")
        if level == 0:
            for chunk in _leaf_chunks(block, nritems, devid):
                chunks[chunk.logical] = chunk
        else:
            if HEADER + nritems * 33 > nodesize:
                raise ImagingError(f"btrfs chunk tree node {logical}: too many items")
            for i in range(nritems):
                (ptr,) = struct.unpack_from("<Q", block, HEADER + i * 33 + 17)
                todo.append((ptr, level - 1))
    result = sorted(chunks.values(), key=lambda c: c.logical)
    for chunk in result:
        for s in chunk.stripes:
            if s + chunk.length > total_bytes:
                raise ImagingError(f"btrfs chunk {chunk.logical} beyond the filesystem")
    return Btrfs(total_bytes, result)


def _leaf_chunks(block: bytes, nritems: int, devid: int) -> list[Chunk]:
    if HEADER + nritems * 25 > len(block):
        raise ImagingError("btrfs chunk tree leaf: too many items")
    out: list[Chunk] = []
    for i in range(nritems):
        _objectid, key_type, key_offset, data_offset, data_size = struct.unpack_from(
            "<QBQII", block, HEADER + i * 25
        )
        if key_type != CHUNK_ITEM_KEY:
            continue  # device items
        begin = HEADER + data_offset
        if begin + data_size > len(block):
            raise ImagingError("btrfs chunk item beyond its leaf")
        out.append(_chunk(key_offset, block[begin : begin + data_size], devid))
    return out


def _sys_chunks(array: bytes, devid: int) -> list[Chunk]:
    """The (key, chunk item) pairs of the superblock's sys_chunk_array."""
    out: list[Chunk] = []
    pos = 0
    while pos < len(array):
        if pos + 17 + 48 > len(array):
            raise ImagingError("btrfs sys_chunk_array truncated")
        _objectid, key_type, key_offset = struct.unpack_from("<QBQ", array, pos)
        if key_type != CHUNK_ITEM_KEY:
            raise ImagingError("btrfs sys_chunk_array holds something other than chunks")
        (num_stripes,) = struct.unpack_from("<H", array, pos + 17 + 44)
        length = 48 + 32 * num_stripes
        out.append(_chunk(key_offset, array[pos + 17 : pos + 17 + length], devid))
        pos += 17 + length
    return out


def _chunk(logical: int, item: bytes, devid: int) -> Chunk:
    if len(item) < 48:
        raise ImagingError("btrfs chunk item truncated")
    length, _owner, _stripe_len, kind = struct.unpack_from("<QQQQ", item, 0)
    (num_stripes,) = struct.unpack_from("<H", item, 44)
    if num_stripes == 0 or len(item) < 48 + 32 * num_stripes:
        raise ImagingError(f"btrfs chunk {logical}: bad stripe count")
    if kind & BLOCK_GROUP_OTHER_PROFILES:
        raise ImagingError(f"btrfs chunk {logical}: RAID profile {kind:#x}")
    if num_stripes != (2 if kind & BLOCK_GROUP_DUP else 1):
        raise ImagingError(f"btrfs chunk {logical}: {num_stripes} stripes for type {kind:#x}")
    stripes = []
    for i in range(num_stripes):
        on, offset = struct.unpack_from("<QQ", item, 48 + 32 * i)
        if on != devid:
            raise ImagingError(f"btrfs chunk {logical} on device {on}, not this one ({devid})")
        stripes.append(offset)
    return Chunk(logical, length, kind, tuple(stripes))


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> bytes:
    """CRC-32C (Castagnoli) of `data`, little-endian, as btrfs stores it in a checksum field.
    Pure Python (the standard library has none): ~5 ms per 16 KiB block, and only the
    superblock and the few chunk tree blocks are checked."""
    crc = 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return struct.pack("<I", crc ^ 0xFFFFFFFF)
