"""Find the partitions of a disk (GPT or MBR), read-only, so used-block maps know where to look.

Only `free_space: skip` needs this (docs/images.md, "Free space"). Everything here is
conservative by construction: a table that does not check out (bad CRC, entries beyond the
disk, a loop in the MBR's extended chain) yields fewer partitions or none, and whatever is not
inside a recognised partition is imaged raw. So a parsing mistake can cost space, never data.

Reads are bounded: two sectors for the MBR/GPT headers, at most MAX_GPT_ENTRY_BYTES of GPT
entries, at most MAX_LOGICAL extended boot records. A disk without a table is returned as one
whole-disk "partition" (number 0) so a filesystem written straight onto it can still be mapped.
"""

import os
import struct
import zlib
from dataclasses import dataclass
from typing import Literal

SECTOR = 512
MAX_GPT_ENTRY_BYTES = 1024 * 1024  # 128 entries x 128 bytes is 16 KiB; allow far more
MAX_LOGICAL = 128
GPT_SIGNATURE = b"EFI PART"
_EXTENDED = {0x05, 0x0F, 0x85}
_PROTECTIVE = 0xEE

TableKind = Literal["gpt", "mbr", "none"]


@dataclass(frozen=True)
class Partition:
    """A partition: `number` as the kernel counts it (1-based; 0 = the whole disk), bytes."""

    number: int
    start: int
    size: int
    type: str  # GPT type GUID (lower case) or MBR type byte as two hex digits; "" for none

    @property
    def end(self) -> int:
        return self.start + self.size


@dataclass(frozen=True)
class PartitionTable:
    kind: TableKind
    partitions: list[Partition]
    sector_size: int = SECTOR


def read_partition_table(fd: int, disk_size: int) -> PartitionTable:
    """The partition table of the disk open (read-only) on `fd`, of `disk_size` bytes."""
    for sector in (SECTOR, 4096):
        parts = _gpt(fd, disk_size, sector)
        if parts is not None:
            return PartitionTable("gpt", parts, sector)
    mbr = _pread(fd, SECTOR, 0)
    parts = _mbr(fd, disk_size, mbr)
    if parts is not None:
        return PartitionTable("mbr", parts)
    return PartitionTable("none", [Partition(0, 0, disk_size, "")] if disk_size else [])


def _pread(fd: int, length: int, offset: int) -> bytes:
    data = os.pread(fd, length, offset)
    return data if len(data) == length else b""


def _gpt(fd: int, disk_size: int, sector: int) -> list[Partition] | None:
    """GPT partitions, from the primary header or else the backup one; None when neither checks."""
    if disk_size < 3 * sector:
        return None
    for header_offset in (sector, disk_size - sector):
        header = _pread(fd, sector, header_offset)
        parts = _gpt_from_header(fd, disk_size, sector, header)
        if parts is not None:
            return parts
    return None


def _gpt_from_header(fd: int, disk_size: int, sector: int, header: bytes) -> list[Partition] | None:
    if len(header) < 92 or header[:8] != GPT_SIGNATURE:
        return None
    (header_size, header_crc) = struct.unpack_from("<II", header, 12)
    if not 92 <= header_size <= sector:
        return None
    zeroed = header[:16] + b"\0\0\0\0" + header[20:header_size]
    if zlib.crc32(zeroed) != header_crc:
        return None
    entries_lba, count, entry_size, entries_crc = struct.unpack_from("<QIII", header, 72)
    if entry_size < 128 or entry_size % 8 or count * entry_size > MAX_GPT_ENTRY_BYTES:
        return None
    table_bytes = count * entry_size
    table_offset = entries_lba * sector
    if table_offset + table_bytes > disk_size:
        return None
    table = _pread(fd, table_bytes, table_offset)
    if len(table) != table_bytes or zlib.crc32(table) != entries_crc:
        return None
    parts = []
    for index in range(count):
        entry = table[index * entry_size : (index + 1) * entry_size]
        type_guid = entry[:16]
        if type_guid == bytes(16):
            continue
        first, last = struct.unpack_from("<QQ", entry, 32)
        start, end = first * sector, (last + 1) * sector
        if first > last or end > disk_size:
            continue  # a broken entry: its space stays raw
        parts.append(Partition(index + 1, start, end - start, _guid(type_guid)))
    return parts


def _guid(raw: bytes) -> str:
    a, b, c = struct.unpack_from("<IHH", raw)
    return f"{a:08x}-{b:04x}-{c:04x}-{raw[8:10].hex()}-{raw[10:16].hex()}"


def _mbr_entries(sector: bytes) -> list[tuple[int, int, int, int]] | None:
    """(status, type, first LBA, sectors) of the four entries; None if not a partition table.

    A FAT or NTFS boot sector also ends in 55 AA; its bytes where the entries would be are
    code or zeros, and a status byte other than 0x00/0x80 tells them apart.
    """
    if len(sector) < SECTOR or sector[510:512] != b"\x55\xaa":
        return None
    entries = []
    for i in range(4):
        status, ptype, first, count = struct.unpack_from("<B3xB3xII", sector, 446 + 16 * i)
        if status not in (0x00, 0x80):
            return None
        entries.append((status, ptype, first, count))
    return entries


def _mbr(fd: int, disk_size: int, sector0: bytes) -> list[Partition] | None:
    entries = _mbr_entries(sector0)
    if entries is None or _is_boot_sector(sector0):
        return None
    if all(ptype == 0 for _, ptype, _, _ in entries):
        return None
    parts: list[Partition] = []
    for index, (_, ptype, first, count) in enumerate(entries):
        if ptype == 0 or count == 0:
            continue
        if ptype == _PROTECTIVE:
            return None  # a GPT disk whose GPT did not check out: nothing is trusted
        start, size = first * SECTOR, count * SECTOR
        if start == 0 or start + size > disk_size:
            continue
        if ptype in _EXTENDED:
            parts.extend(_logical(fd, disk_size, start, size))
            continue
        parts.append(Partition(index + 1, start, size, f"{ptype:02x}"))
    return parts


def _logical(fd: int, disk_size: int, ext_start: int, ext_size: int) -> list[Partition]:
    """Logical partitions (5, 6, ...) along the extended boot record chain, bounded."""
    parts: list[Partition] = []
    seen: set[int] = set()
    ebr = ext_start
    while len(parts) < MAX_LOGICAL and ebr not in seen:
        seen.add(ebr)
        entries = _mbr_entries(_pread(fd, SECTOR, ebr))
        if entries is None:
            break
        _, ptype, first, count = entries[0]
        if ptype != 0 and count:
            start, size = ebr + first * SECTOR, count * SECTOR
            if ext_start < start and start + size <= min(disk_size, ext_start + ext_size):
                parts.append(Partition(5 + len(parts), start, size, f"{ptype:02x}"))
        _, next_type, next_first, _ = entries[1]
        if next_type not in _EXTENDED or next_first == 0:
            break
        ebr = ext_start + next_first * SECTOR
    return parts


def _is_boot_sector(sector0: bytes) -> bool:
    """A filesystem's own boot sector at LBA 0 (a FAT or NTFS "superfloppy"), not an MBR."""
    return (
        sector0[3:11] == b"NTFS    "
        or sector0[3:11] == b"EXFAT   "
        or sector0[54:59] == b"FAT12"
        or sector0[54:59] == b"FAT16"
        or sector0[82:87] == b"FAT32"
    )
