"""Used-block maps: which byte ranges of a disk hold data, for `free_space: skip` (contract §4).

The disk is cut into regions: partition tables, gaps between partitions and partitions whose
filesystem is not mapped are *raw* (counted as used, imaged byte for byte); a partition whose
filesystem Debian's `partclone` can map (ext2/3/4, NTFS, FAT, XFS, btrfs) contributes only the
blocks that filesystem uses. partclone was chosen over one tool per filesystem: it is the
mapper FOG, Clonezilla and Rescuezilla rely on, `-D` writes the used blocks as a ddrescue
domain file straight from the filesystem's own bitmaps (a 1 GiB ext4 in ~10 ms), and one output
format covers every filesystem it knows.

Conservative everywhere, because a block wrongly called free is data lost on restore:
- only ranges partclone positively reports free ("?") are free; anything it does not mention
  (a filesystem smaller than its partition, a short domain file) stays used;
- free ranges shrink inward to 4 KiB boundaries, so every free range is whole pages;
- a filesystem that was not cleanly unmounted, has a journal or log to replay, or that
  partclone refuses or fails on, is raw (the reason goes into the map's notes, and so into
  the log);
- partitions that overlap each other, and a partition carrying the signatures of two
  filesystems, are raw.

Per filesystem, what is checked before partclone's map is believed:
- ext2/3/4: the superblock's state (clean, no errors) and no journal to replay.
- XFS: a clean log. partclone.xfs maps from the free-space btrees on disk and ignores the log,
  so after a crash (log not replayed) blocks the log allocated look free; `xfs_logprint`
  reports the log's state from its head and tail (a few sectors), and anything but `<CLEAN>`
  (or xfs_logprint missing) keeps the partition raw. External logs and realtime sections:
  partclone refuses them, so raw.
- btrfs: one device, no log tree (fsync'd changes not yet committed), crc32c checksums, only
  single and DUP profiles, features known. partclone.btrfs 0.3.23 marks only the first copy of
  DUP metadata (partclone issue #270), so every copy of every metadata and system chunk, the
  first MiB and the superblock copies stay used whatever partclone says (the chunk map is read
  from disk and checksum-checked, `onbox.imaging.btrfschunks`); partclone decides only which
  parts of single-copy data chunks are free.

partclone needs the partition as its own device: on a block device the kernel's partition
node (found through sysfs by start and size), on a disk image file a read-only loop device
(root only). When neither is available the partition is raw.
"""

import os
import re
import shutil
import stat
import struct
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from onbox.errors import ImagingError
from onbox.imaging import btrfschunks
from onbox.imaging.partitions import Partition, read_partition_table
from onbox.store.records import chunk_ranges

__all__ = [
    "DiskMap",
    "chunk_ranges",
    "complement",
    "keep_only",
    "map_disk",
    "merge",
    "subtract",
    "used_ranges",
]

ALIGN = 4096
Range = tuple[int, int]  # [start, end) in bytes from the start of the disk

# Filesystem kind -> partclone program. exFAT (and everything else) stays raw until a test here
# covers it.
PARTCLONE = {
    "ext": "partclone.extfs",
    "ntfs": "partclone.ntfs",
    "fat": "partclone.fat",
    "xfs": "partclone.xfs",
    "btrfs": "partclone.btrfs",
}
MAX_DOMAIN_BYTES = 64 * 1024 * 1024
_DOMAIN_LINE = re.compile(r"^\s*0x([0-9A-Fa-f]+)\s+0x([0-9A-Fa-f]+)\s+([?*/\-+])\s*$")

# ext2/3/4 superblock (at byte 1024 of the filesystem): s_magic, s_state, s_feature_incompat.
_EXT_MAGIC = 0xEF53
_EXT_STATE_VALID = 0x0001
_EXT_STATE_ERRORS = 0x0002
_EXT_INCOMPAT_RECOVER = 0x0004
_EXT_INCOMPAT_JOURNAL_DEV = 0x0008
# XFS superblock (big-endian, at byte 0): magic, then the fields partclone.xfs refuses on.
_XFS_MAGIC = b"XFSB"


@dataclass(frozen=True)
class DiskMap:
    """The used ranges of a whole disk (raw regions included), and how each part was decided."""

    size: int
    used: list[Range]
    notes: list[str] = field(default_factory=list)

    @property
    def used_bytes(self) -> int:
        return sum(end - start for start, end in self.used)


def used_ranges(path: Path, size: int) -> list[Range]:
    """The used ranges of the disk at `path` (`size` bytes); raw regions count as used."""
    return map_disk(path, size).used


def map_disk(path: Path, size: int) -> DiskMap:
    """Map the disk at `path`: partitions found, filesystems mapped, the rest raw."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise ImagingError(f"cannot open disk {path}: {exc.strerror}") from None
    try:
        table = read_partition_table(fd, size)
        notes = [f"partition table: {table.kind}"]
        free: list[Range] = []
        overlapping = _overlapping(table.partitions)
        for part in table.partitions:
            label = f"partition {part.number}" if part.number else "whole disk"
            if part in overlapping:
                notes.append(f"{label}: overlaps another partition, raw")
                continue
            kind, problem = probe_filesystem(fd, part.start, part.size)
            if kind is None:
                if table.kind != "none" or problem:
                    notes.append(f"{label}: {problem or 'no mapped filesystem'}, raw")
                continue
            try:
                part_free = _partition_free(path, fd, part, kind)
            except ImagingError as exc:
                notes.append(f"{label} ({kind}): {exc.message}, raw")
                continue
            free.extend(part_free)
            notes.append(
                f"{label} ({kind}): {_size(part.size - _total(part_free))} of "
                f"{_size(part.size)} used"
            )
    finally:
        os.close(fd)
    return DiskMap(size, complement(merge(free), size), notes)


def probe_filesystem(fd: int, start: int, size: int) -> tuple[str | None, str]:
    """(kind, "") for a filesystem partclone maps here, or (None, why not / "")."""
    head = os.pread(fd, 4096, start)
    if len(head) < 2048 or size < 4096:
        return None, ""
    if struct.unpack_from("<H", head, 1024 + 56)[0] == _EXT_MAGIC:
        (state,) = struct.unpack_from("<H", head, 1024 + 58)
        (incompat,) = struct.unpack_from("<I", head, 1024 + 96)
        if incompat & _EXT_INCOMPAT_JOURNAL_DEV:
            return None, "ext journal device"
        if incompat & _EXT_INCOMPAT_RECOVER:
            return None, "ext filesystem with a journal to replay (not cleanly unmounted)"
        if not state & _EXT_STATE_VALID or state & _EXT_STATE_ERRORS:
            return None, "ext filesystem not cleanly unmounted or with errors"
        return "ext", ""
    if head[510:512] == b"\x55\xaa":
        if head[3:11] == b"NTFS    ":
            return "ntfs", ""
        if head[54:59] in (b"FAT12", b"FAT16") or head[82:87] == b"FAT32":
            return "fat", ""
    btrfs = size >= btrfschunks.SUPER_OFFSET + btrfschunks.SUPER_SIZE and (
        os.pread(fd, 8, start + btrfschunks.SUPER_OFFSET + 0x40) == btrfschunks.MAGIC
    )
    if head[:4] == _XFS_MAGIC:
        if btrfs:
            return None, "both XFS and btrfs signatures"
        return _xfs_probe(head, size)
    if btrfs:
        sb = os.pread(fd, btrfschunks.SUPER_SIZE, start + btrfschunks.SUPER_OFFSET)
        problem = btrfschunks.superblock_problem(sb)
        return (None, problem) if problem else ("btrfs", "")
    return None, ""


def _xfs_probe(head: bytes, size: int) -> tuple[str | None, str]:
    """XFS superblock fields that rule the map out (the log's state is checked later)."""
    blocksize, dblocks, _rblocks, rextents = struct.unpack_from(">IQQQ", head, 4)
    (logstart,) = struct.unpack_from(">Q", head, 48)
    inprogress = head[126]
    if blocksize < 512 or blocksize > 65536 or dblocks * blocksize > size:
        return None, "XFS superblock does not fit its partition"
    if inprogress:
        return None, "XFS being made (mkfs did not finish)"
    if logstart == 0:
        return None, "XFS with an external log"
    if rextents:
        return None, "XFS with a realtime section"
    return "xfs", ""


def _xfs_log_clean(device: Path) -> None:
    """ImagingError unless `xfs_logprint` says the XFS log on `device` is clean.

    It finds the log's head and tail first (a few sector reads) and prints their state before
    it prints any transaction; only that header is read, then the tool is stopped, so a dirty
    log of 2 GiB costs the same as a clean one.
    """
    program = shutil.which("xfs_logprint", path=_tool_path())
    if program is None:
        raise ImagingError("xfs_logprint (xfsprogs) is not installed, the log cannot be checked")
    proc = subprocess.Popen(
        [program, "-t", str(device)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    timer = threading.Timer(60, proc.kill)
    timer.start()
    state = ""
    try:
        assert proc.stdout is not None
        for _ in range(40):
            line = proc.stdout.readline(4096).decode(errors="replace")
            if not line:
                break
            if "state:" in line:
                state = line.split("state:", 1)[1].strip()
                break
    finally:
        timer.cancel()
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    if state != "<CLEAN>":
        raise ImagingError(f"XFS log not clean ({state or 'xfs_logprint found no log state'})")


def _tool_path() -> str:
    return os.environ.get("PATH", "") + ":/usr/sbin:/sbin"


def _partition_free(path: Path, fd: int, part: Partition, kind: str) -> list[Range]:
    """Free ranges (disk offsets, 4 KiB aligned) of one partition, from partclone's domain file."""
    program = shutil.which(PARTCLONE[kind], path=_tool_path())
    if program is None:
        raise ImagingError(f"{PARTCLONE[kind]} is not installed")
    # btrfs: the chunk map first (cheap, and a reason to stay raw before partclone runs).
    keep = btrfschunks.read_btrfs(fd, part.start, part.size).keep() if kind == "btrfs" else []
    with _partition_device(path, fd, part) as device, tempfile.TemporaryDirectory() as tmp:
        if kind == "xfs":
            _xfs_log_clean(device)
        domain = Path(tmp) / "domain"
        # -D: domain file of used blocks; -q -f 0: no progress output and no progress-thread
        # sleeps (the default refresh waits up to 2 s per run); -L: its log stays in our
        # temporary directory, not /var/log.
        argv = [program, "-D", "-s", str(device), "-O", str(domain), "-q", "-f", "0"]
        argv += ["-L", str(Path(tmp) / "log")]
        try:
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=60 + part.size / 50e6,  # bitmaps are read at well over 50 MB/s
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ImagingError(f"{PARTCLONE[kind]} timed out") from None
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).decode(errors="replace").strip().splitlines()
            reason = next((line for line in reversed(tail) if line.strip()), "")
            raise ImagingError(f"{PARTCLONE[kind]} failed ({reason[:120] or done.returncode})")
        if kind == "btrfs":
            # partclone.btrfs logs a tree block it cannot read and carries on without it (and
            # without the data extents it lists), still exiting 0: such a map is not used.
            said = done.stdout + done.stderr + _read_small(Path(tmp) / "log")
            for marker in _BTRFS_TROUBLE:
                if marker in said:
                    raise ImagingError(f"partclone.btrfs: {marker.decode()} (tree walk incomplete)")
        with open(domain, "rb") as f:
            text = f.read(MAX_DOMAIN_BYTES + 1)
        if len(text) > MAX_DOMAIN_BYTES:
            raise ImagingError(f"{PARTCLONE[kind]} domain file over {MAX_DOMAIN_BYTES} bytes")
    free = parse_domain(text.decode(errors="replace"), part.size)
    if keep:
        free = subtract(free, keep)
    return [(part.start + start, part.start + end) for start, end in free]


_BTRFS_TROUBLE = (b"failed to read", b"BUG")


def _read_small(path: Path, limit: int = 1024 * 1024) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(limit)
    except OSError:
        return b""


def parse_domain(text: str, size: int) -> list[Range]:
    """Free ranges of a partclone domain file (partition offsets), clipped and page-aligned.

    Status "+" marks used blocks; "?" (never tried) is what partclone leaves for free ones.
    Any other status, and anything not listed, stays used.
    """
    free: list[Range] = []
    rows = 0
    for line in text.splitlines():
        m = _DOMAIN_LINE.match(line)
        if m is None:
            continue
        rows += 1
        if rows == 1:
            continue  # the first row is ddrescue's "current position", not a block range
        if m.group(3) != "?":
            continue
        start = int(m.group(1), 16)
        end = min(start + int(m.group(2), 16), size)
        start = -(-start // ALIGN) * ALIGN
        end = end // ALIGN * ALIGN
        if start < end:
            free.append((start, end))
    return merge(free)


@contextmanager
def _partition_device(path: Path, fd: int, part: Partition) -> Iterator[Path]:
    """A device holding exactly the partition: the kernel's node, or a read-only loop device."""
    mode = os.fstat(fd).st_mode
    if part.number == 0 and (stat.S_ISBLK(mode) or stat.S_ISREG(mode)):
        yield path  # the filesystem is the whole disk: partclone reads the disk itself
        return
    if stat.S_ISBLK(mode):
        node = _kernel_partition(path, part)
        if node is not None:
            yield node
            return
    losetup = shutil.which("losetup", path=_tool_path())
    if losetup is None:
        raise ImagingError("no partition device and no losetup")
    argv = [losetup, "--find", "--show", "--read-only", "--offset", str(part.start)]
    argv += ["--sizelimit", str(part.size), str(path)]
    done = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip()[:120]
        raise ImagingError(f"no partition device and losetup failed ({reason})")
    loop = Path(done.stdout.decode().strip())
    try:
        yield loop
    finally:
        subprocess.run([losetup, "-d", str(loop)], capture_output=True, timeout=60, check=False)


def _kernel_partition(
    path: Path, part: Partition, sys_block: Path = Path("/sys/class/block")
) -> Path | None:
    """`/dev/<disk><n>` when the kernel's partition of that start and size exists."""
    disk = sys_block / os.path.basename(os.path.realpath(path))
    try:
        entries = sorted(disk.iterdir())
    except OSError:
        return None
    for entry in entries:
        try:
            start = int((entry / "start").read_text()) * 512
            size = int((entry / "size").read_text()) * 512
        except (OSError, ValueError):
            continue
        node = Path("/dev") / entry.name
        if start == part.start and size == part.size and node.is_block_device():
            return node
    return None


def _overlapping(parts: Sequence[Partition]) -> set[Partition]:
    """Partitions sharing a byte with another (each pair compared; tables are small)."""
    return {a for a in parts for b in parts if a is not b and a.start < b.end and b.start < a.end}


def merge(ranges: Sequence[Range]) -> list[Range]:
    """Sorted, non-overlapping, non-adjacent ranges covering the same bytes."""
    out: list[Range] = []
    for start, end in sorted(r for r in ranges if r[0] < r[1]):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def subtract(free: Sequence[Range], keep: Sequence[Range]) -> list[Range]:
    """The bytes of `free` (merged, 4 KiB aligned) outside `keep`, still whole 4 KiB pages:
    `keep` grows outward to page boundaries first."""
    grown = merge([(s // ALIGN * ALIGN, -(-e // ALIGN) * ALIGN) for s, e in keep])
    out: list[Range] = []
    for start, end in free:
        for gap_start, gap_end in complement(grown, end):
            lo, hi = max(start, gap_start), min(end, gap_end)
            if lo < hi:
                out.append((lo, hi))
    return merge(out)


def complement(ranges: Sequence[Range], size: int) -> list[Range]:
    """The bytes of [0, size) not in `ranges` (which must be merged)."""
    out: list[Range] = []
    position = 0
    for start, end in ranges:
        if start > position:
            out.append((position, min(start, size)))
        position = max(position, end)
    if position < size:
        out.append((position, size))
    return [r for r in out if r[0] < r[1]]


def keep_only(data: bytes, ranges: Sequence[Range]) -> bytes:
    """`data` with every byte outside `ranges` (relative, merged) set to zero."""
    if len(ranges) == 1 and ranges[0] == (0, len(data)):
        return data
    buf = bytearray(len(data))
    for start, end in ranges:
        buf[start:end] = data[start:end]
    return bytes(buf)


def _total(ranges: Sequence[Range]) -> int:
    return sum(end - start for start, end in ranges)


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"
