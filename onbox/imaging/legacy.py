"""The seed's gz images: verify, restore (same rules as chunked images) and import into the store.

A gz stream can only be checked by reading it to the end (gzip's CRC-32 and length trailer),
so restore's pre-check decompresses each file once before the first write, which also gives
the image's size for the target-size check. Writing then compares each block with the target
and writes only differing blocks, like a chunked restore.
"""

import functools
import gzip
import os
import zlib
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from onbox.errors import ImagingError, IntegrityError, StoreError
from onbox.imaging.backup import BackupReport, DiskStream, backup_streams
from onbox.imaging.disks import disk_size, read_exactly
from onbox.imaging.progress import Progress, Tracker
from onbox.imaging.verify import ChunkProblem
from onbox.store.base import LEGACY_ID, ImageStore, LegacyFile
from onbox.store.legacy import pick_legacy
from onbox.store.records import DEFAULT_CHUNK_SIZE
from schema.request import DiskFigures

BLOCK = DEFAULT_CHUNK_SIZE
_GZ_ERRORS = (OSError, EOFError, zlib.error, StoreError)
EMPTY = "holds no data (a 0-byte file or an empty gzip stream): not an image of a disk"


def _files(store: ImageStore, box_ip: str) -> dict[str, LegacyFile]:
    return {f.disk: f for f in pick_legacy(store.legacy_files(box_ip))}


def _measure(store: ImageStore, box_ip: str, f: LegacyFile) -> int:
    """Uncompressed size, reading the whole stream; IntegrityError when it is damaged."""
    size = 0
    try:
        with store.open_legacy(box_ip, f.name) as raw, gzip.GzipFile(fileobj=raw) as gz:
            while block := gz.read(BLOCK):
                size += len(block)
    except _GZ_ERRORS as exc:
        raise IntegrityError(f"legacy image {box_ip}/{f.name} is damaged: {_why(exc)}") from None
    if size == 0:
        raise IntegrityError(f"legacy image {box_ip}/{f.name} {EMPTY}")
    return size


def _why(exc: BaseException) -> str:
    return exc.message if isinstance(exc, StoreError) else str(exc)


def _nonempty(read: Callable[[int], bytes], what: str) -> Callable[[int], bytes]:
    """A reader that fails when the stream ends before its first byte (an empty gz)."""
    seen = False

    def checked(length: int) -> bytes:
        nonlocal seen
        data = read(length)
        if data:
            seen = True
        elif not seen and length > 0:
            raise IntegrityError(f"legacy image {what} {EMPTY}")
        return data

    return checked


def check_legacy(store: ImageStore, box_ip: str, f: LegacyFile) -> ChunkProblem | None:
    try:
        _measure(store, box_ip, f)
    except IntegrityError as exc:
        return ChunkProblem(box_ip, LEGACY_ID, f.disk, 0, None, "corrupt", exc.message)
    return None


def restore_legacy(
    store: ImageStore,
    box_ip: str,
    disks: Mapping[str, Path],
    *,
    progress: Progress | None = None,
    precheck: bool = True,
) -> list[DiskFigures]:
    files = _files(store, box_ip)
    missing = sorted(set(disks) - set(files))
    if missing:
        raise ImagingError(
            f"legacy image of {box_ip} has no disk {', '.join(missing)} "
            f"(it has {', '.join(sorted(files)) or 'none'})"
        )
    sizes: dict[str, int | None] = {name: None for name in disks}
    if precheck:
        for name, path in disks.items():
            size = sizes[name] = _measure(store, box_ip, files[name])
            if disk_size(path) < size:
                raise ImagingError(
                    f"refusing to restore {name}: target {path} has {disk_size(path)} bytes, "
                    f"the legacy image {files[name].name} needs {size}"
                )
    return [
        _restore_one(store, box_ip, files[name], path=path, size=sizes[name], progress=progress)
        for name, path in disks.items()
    ]


def _restore_one(
    store: ImageStore,
    box_ip: str,
    f: LegacyFile,
    *,
    path: Path,
    size: int | None,
    progress: Progress | None,
) -> DiskFigures:
    target_size = disk_size(path)
    tracker = Tracker(f"restore {f.disk}", size, progress)
    written = skipped = offset = 0
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError as exc:
        raise ImagingError(f"cannot open {path} for writing: {exc.strerror}") from None
    try:
        with store.open_legacy(box_ip, f.name) as raw, gzip.GzipFile(fileobj=raw) as gz:
            while block := gz.read(BLOCK):
                if offset + len(block) > target_size:
                    raise ImagingError(
                        f"legacy image {f.name} is larger than {path} ({target_size} bytes); "
                        f"{path} is partly restored"
                    )
                if os.pread(fd, len(block), offset) == block:
                    skipped += len(block)
                else:
                    os.pwrite(fd, block, offset)
                    written += len(block)
                offset += len(block)
                tracker.advance(len(block))
        os.fsync(fd)
    except _GZ_ERRORS as exc:
        raise IntegrityError(
            f"legacy image {box_ip}/{f.name} is damaged: {_why(exc)}; {path} is partly restored"
        ) from None
    finally:
        os.close(fd)
    if offset == 0:
        raise IntegrityError(f"legacy image {box_ip}/{f.name} {EMPTY}; nothing was written")
    tracker.finish()
    return DiskFigures(
        disk=f.disk,
        size=offset,
        bytes_read=f.stored_bytes,
        bytes_written=written,
        bytes_skipped=skipped,
    )


def import_legacy(
    store: ImageStore,
    box_ip: str,
    *,
    progress: Progress | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    workers: int | None = None,
) -> BackupReport:
    """Copy a box's legacy image into the store as a chunked image dated like the gz files,
    then rename each gz to `<name>.imported` (kept for the operator, no longer listed)."""
    files = _files(store, box_ip)
    if not files:
        raise ImagingError(f"box {box_ip} has no legacy image (sdX.gz or sdX.raw.gz)")
    created = datetime.fromtimestamp(max(f.mtime for f in files.values()), UTC)
    with ExitStack() as stack:
        streams = {}
        for name, f in files.items():
            raw = stack.enter_context(store.open_legacy(box_ip, f.name))
            gz = stack.enter_context(gzip.GzipFile(fileobj=raw))
            reader = _nonempty(gz.read, f"{box_ip}/{f.name}")
            streams[name] = DiskStream(functools.partial(read_exactly, reader), None)
        try:
            report = backup_streams(
                store,
                box_ip,
                streams,
                progress=progress,
                chunk_size=chunk_size,
                workers=workers,
                now=created,
            )
        except _GZ_ERRORS as exc:
            raise IntegrityError(f"legacy image of {box_ip} is damaged: {_why(exc)}") from None
    for f in files.values():
        store.retire_legacy(box_ip, f.name)
    return report
