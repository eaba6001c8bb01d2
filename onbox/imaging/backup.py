"""Back up a box's disks into the store as one new image (contract §4).

Per disk: read fixed-size chunks sequentially; on worker threads, record all-zero chunks
without storing them, hash the rest, take a lease on the id (gc protocol, docs/images.md),
skip chunks the store already has, compress and store the others. Manifests are written when
every disk is done, the commit record last: an interrupted backup leaves no image and never
touches earlier ones. Memory is bounded by the in-flight window (2 x workers chunks).

With `free_space: skip` a disk comes with its used ranges (onbox.imaging.usedmap): chunks with
no used byte are not read (the reader skips them) and are recorded as free; in partly used
chunks the free bytes are zeroed before hashing, so garbage left by deleted files neither
costs space nor spoils dedup. The manifest keeps the ranges; restore writes only those.

Dedup on a hostile share (docs/threat-model.md): every box can write `store/chunks/`, so a
box could plant garbage under the name of a chunk another disk will have. When a backup finds
a chunk it did not write itself, it reads it back and checks that it decompresses to exactly
the bytes it would store (`verify_dedup`, on by default; its cost is measured in
docs/images.md); a chunk that does not is replaced with the right bytes and named in the
report's notices. Before the commit record, every chunk the image names is checked to be
present (a stat each); one a killed gc left in its trash is put back, one that vanished
otherwise fails the backup (nothing committed).
"""

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from onbox.errors import ImagingError, StoreError
from onbox.imaging import codec
from onbox.imaging.disks import Reader, chunks, disk_size, read_exactly
from onbox.imaging.pipeline import bounded_map, default_workers
from onbox.imaging.progress import Progress, Tracker
from onbox.imaging.usedmap import chunk_ranges, keep_only, map_disk
from onbox.store.base import ImageStore, Lease
from onbox.store.records import (
    DEFAULT_CHUNK_SIZE,
    CommitDisk,
    CommitRecord,
    DiskManifest,
    new_image_id,
)
from schema.request import DiskFigures
from schema.types import DiskName, FreeSpace, IPv4


@dataclass(frozen=True)
class DiskStream:
    """A disk to back up: how to read it, and its size when known (for progress).

    `used`: the disk's used ranges (free_space: skip; needs `size`), None to image every byte;
    `skip(n)`: move the reader n bytes on without reading (else free chunks are read and
    dropped).
    """

    read: Reader
    size: int | None
    used: list[tuple[int, int]] | None = None
    skip: Callable[[int], object] | None = None


@dataclass(frozen=True)
class BackupReport:
    image_id: str
    box_ip: str
    disks: list[DiskFigures]
    elapsed: float
    notices: list[str] = field(default_factory=list)

    @property
    def bytes_stored(self) -> int:
        return sum(d.bytes_stored for d in self.disks)


@dataclass
class _DiskResult:
    manifest: DiskManifest
    figures: DiskFigures
    stored_bytes: int  # compressed size of the disk's distinct chunks
    zero_chunks: int = 0
    free_chunks: int = 0


def backup_disks(
    store: ImageStore,
    box_ip: str,
    disks: Mapping[str, Path],
    *,
    progress: Progress | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    workers: int | None = None,
    level: int = codec.DEFAULT_LEVEL,
    now: datetime | None = None,
    free_space: FreeSpace = "raw",
    verify_dedup: bool = True,
) -> BackupReport:
    """Back up `disks` (disk name → block device or file) as one committed image."""
    if not disks:
        raise ImagingError(f"backup of {box_ip}: no disks given")
    with ExitStack() as stack:
        streams: dict[str, DiskStream] = {}
        for name, path in disks.items():
            size = disk_size(path)
            try:
                f = stack.enter_context(open(path, "rb", buffering=0))
            except OSError as exc:
                raise ImagingError(f"cannot read disk {name} ({path}): {exc.strerror}") from None
            used = map_disk(path, size).used if free_space == "skip" else None
            streams[name] = DiskStream(f.read, size, used, _seeker(f.fileno()))
        return backup_streams(
            store,
            box_ip,
            streams,
            progress=progress,
            chunk_size=chunk_size,
            workers=workers,
            level=level,
            now=now,
            free_space=free_space,
            verify_dedup=verify_dedup,
        )


def _seeker(fd: int) -> Callable[[int], object]:
    return lambda n: os.lseek(fd, n, os.SEEK_CUR)


def backup_streams(
    store: ImageStore,
    box_ip: str,
    streams: Mapping[str, DiskStream],
    *,
    progress: Progress | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    workers: int | None = None,
    level: int = codec.DEFAULT_LEVEL,
    now: datetime | None = None,
    on_chunk: Callable[[str, int], None] | None = None,
    free_space: FreeSpace = "raw",
    verify_dedup: bool = True,
) -> BackupReport:
    """The engine behind `backup_disks`, on readers (a disk, a decompressing legacy stream).

    `on_chunk(disk, index)` is called after each chunk is recorded (tests interleave gc there).
    """
    if chunk_size <= 0:
        raise ImagingError(f"chunk size must be positive, not {chunk_size}")
    _check_names(box_ip, list(streams))
    started = time.monotonic()
    created = (now or datetime.now(UTC)).astimezone(UTC)
    image_id = new_image_id(created)
    workers = workers or default_workers()
    lease = store.open_lease(image_id)
    run = _Run(store, verify_dedup)
    try:
        results: dict[str, _DiskResult] = {}
        with ThreadPoolExecutor(workers, thread_name_prefix="backup") as pool:
            for name, stream in streams.items():
                results[name] = _backup_disk(
                    run,
                    lease,
                    pool,
                    name=name,
                    stream=stream,
                    chunk_size=chunk_size,
                    workers=workers,
                    level=level,
                    progress=progress,
                    on_chunk=on_chunk,
                )
        run.check_present({c for r in results.values() for c in r.manifest.stored_ids()})
        commit_disks = []
        for name, result in results.items():
            digest = store.write_manifest(box_ip, image_id, result.manifest)
            commit_disks.append(
                CommitDisk(
                    disk=name,
                    size=result.manifest.size,
                    chunk_size=chunk_size,
                    chunks=len(result.manifest.chunks),
                    zero_chunks=result.zero_chunks,
                    stored_bytes=result.stored_bytes,
                    manifest_sha256=digest,
                    free_chunks=result.free_chunks,
                )
            )
        store.commit(
            CommitRecord(
                id=image_id,
                box_ip=box_ip,
                created=created,
                disks=commit_disks,
                free_space=free_space,
            )
        )
    finally:
        lease.release()
    return BackupReport(
        image_id,
        box_ip,
        [r.figures for r in results.values()],
        time.monotonic() - started,
        run.notices,
    )


class _Run:
    """What one backup shares across its disks: the chunks it wrote, what it noticed."""

    def __init__(self, store: ImageStore, verify_dedup: bool) -> None:
        self.store = store
        self.verify_dedup = verify_dedup
        self.written: set[str] = set()
        self.notices: list[str] = []
        self.lock = threading.Lock()

    def wrote(self, cid: str) -> None:
        with self.lock:
            self.written.add(cid)

    def trusted(self, cid: str) -> bool:
        with self.lock:
            return not self.verify_dedup or cid in self.written

    def stored_matches(self, cid: str, data: bytes) -> bool:
        """Does the chunk stored under `cid` decompress to exactly `data`?"""
        try:
            blob = self.store.get_chunk(cid, len(data))
            return codec.decompress(blob, len(data), f"chunk {cid}") == data
        except StoreError:
            return False

    def replaced(self, cid: str) -> None:
        with self.lock:
            self.written.add(cid)
            self.notices.append(
                f"chunk {cid} in the store did not hold the bytes its name says; replaced"
            )

    def check_present(self, ids: set[str]) -> None:
        """Every chunk the image names is in store/chunks/ before the commit record."""
        for cid in sorted(ids):
            if self.store.stat_chunk(cid) is not None:
                continue
            for gc_id in self.store.trash_runs():
                if self.store.untrash_chunk(gc_id, cid):
                    with self.lock:
                        self.notices.append(f"chunk {cid} was in the trash of {gc_id}; put back")
                    break
            if self.store.stat_chunk(cid) is None:
                raise ImagingError(
                    f"chunk {cid} disappeared from the store while the backup ran (not by gc's "
                    "protocol); nothing committed, run the backup again"
                )


def _check_names(box_ip: str, disks: list[str]) -> None:
    """Fail before reading a byte, not at commit time, on a bad box address or disk name."""
    try:
        TypeAdapter(IPv4).validate_python(box_ip)
    except ValidationError:
        raise ImagingError(f"not a box IP address: {box_ip!r}") from None
    for name in disks:
        try:
            TypeAdapter(DiskName).validate_python(name)
        except ValidationError:
            raise ImagingError(f"not a disk name (sda, vdb, nvme0n1, ...): {name!r}") from None
    if not disks:
        raise ImagingError(f"backup of {box_ip}: no disks given")


def _backup_disk(
    run: _Run,
    lease: Lease,
    pool: ThreadPoolExecutor,
    *,
    name: str,
    stream: DiskStream,
    chunk_size: int,
    workers: int,
    level: int,
    progress: Progress | None,
    on_chunk: Callable[[str, int], None] | None,
) -> _DiskResult:
    store = run.store
    claimed: set[str] = set()
    claim_lock = threading.Lock()

    def store_chunk(item: _Chunk) -> tuple[str | None, int, int, int]:
        """(chunk id or None for zeros, length, bytes newly stored, stored size if first seen)."""
        data, length, used = item
        if data is None:
            return None, length, 0, 0  # free: nothing was read
        if used is not None:
            data = keep_only(data, used)
        if codec.is_zero(data):
            return None, len(data), 0, 0
        cid = codec.chunk_id(data)
        with claim_lock:
            first = cid not in claimed
            claimed.add(cid)
        if not first:
            return cid, len(data), 0, 0
        # The lease is visible to gc before we look for the chunk: either gc sees the lease,
        # or we see the chunk gone and store it again (docs/images.md, "gc safety").
        lease.add(cid)
        existing = store.stat_chunk(cid)
        if existing is not None:
            if run.trusted(cid) or run.stored_matches(cid, data):
                return cid, len(data), 0, existing
            blob = codec.compress(data, level)
            store.put_chunk(cid, blob, replace=True)
            run.replaced(cid)
            return cid, len(data), len(blob), len(blob)
        blob = codec.compress(data, level)
        new = store.put_chunk(cid, blob)
        if new:
            run.wrote(cid)
        return cid, len(data), len(blob) if new else 0, len(blob)

    tracker = Tracker(f"backup {name}", stream.size, progress)
    ids: list[str | None] = []
    size = stored_new = stored_distinct = zero = 0
    items = _chunks(stream, name, chunk_size)
    try:
        for index, (cid, length, new, distinct) in enumerate(
            bounded_map(pool, store_chunk, items, 2 * workers)
        ):
            ids.append(cid)
            size += length
            stored_new += new
            stored_distinct += distinct
            zero += cid is None
            tracker.advance(length)
            if on_chunk is not None:
                on_chunk(name, index)
    except OSError as exc:
        raise ImagingError(f"reading disk {name} failed: {exc.strerror or exc}") from None
    if stream.size is not None and size != stream.size:
        # A disk that ends early (truncated file, device gone) must not commit as whole.
        raise ImagingError(
            f"disk {name} changed while it was read: {size} bytes read, {stream.size} expected"
        )
    tracker.finish()
    manifest = DiskManifest(
        disk=name,
        size=size,
        chunk_size=chunk_size,
        chunks=ids,
        free_space="raw" if stream.used is None else "skip",
        used=stream.used,
    )
    free = manifest.free_bytes()
    free_chunks = sum(1 for i in range(len(ids)) if manifest.chunk_used(i) == [])
    unread = sum(manifest.chunk_length(i) for i in range(len(ids)) if manifest.chunk_used(i) == [])
    figures = DiskFigures(
        disk=name,
        size=size,
        bytes_read=size - unread,
        bytes_stored=stored_new,
        bytes_free=free,
    )
    return _DiskResult(manifest, figures, stored_distinct, zero - free_chunks, free_chunks)


# (bytes, or None for a free chunk that was not read; length; used ranges in it, None = raw)
_Chunk = tuple[bytes | None, int, list[tuple[int, int]] | None]


def _chunks(stream: DiskStream, name: str, chunk_size: int) -> Iterator[_Chunk]:
    """The disk's chunks in order; with a used map, free chunks are skipped, not read."""
    if stream.used is None:
        for data in chunks(stream.read, chunk_size):
            yield data, len(data), None
        return
    if stream.size is None:
        raise ImagingError(f"disk {name}: a used-block map needs the disk's size")
    for offset in range(0, stream.size, chunk_size):
        length = min(chunk_size, stream.size - offset)
        used = chunk_ranges(stream.used, offset, length)
        if not used:
            if stream.skip is not None:
                stream.skip(length)
            else:
                read_exactly(stream.read, length)
            yield None, length, used
            continue
        mask: list[tuple[int, int]] | None = used
        if stream.skip is None or used == [(0, length)]:
            data = read_exactly(stream.read, length)
            got = len(data)
        else:
            # Read only the used ranges (the free ones stay zero): on a real disk the reads
            # are what costs, and a chunk is often half a deleted file.
            buf, position, got = bytearray(length), 0, 0
            for start, end in used:
                if start > position:
                    stream.skip(start - position)
                part = read_exactly(stream.read, end - start)
                buf[start : start + len(part)] = part
                got, position = start + len(part), end
                if len(part) != end - start:
                    break
            else:
                if position < length:
                    stream.skip(length - position)
                got = length
            data, mask = bytes(buf), None  # already zero outside the used ranges
        if got != length:
            raise ImagingError(
                f"disk {name} changed while it was read: it ended at byte {offset + got}"
                f" of {stream.size}"
            )
        yield data, length, mask
