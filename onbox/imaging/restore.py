"""Restore an image onto a box's disks (SPEC §4).

Before the first write: every disk of the request must be in the image, every target at least
as large as its disk image, every chunk present and (unless `precheck=False`) decompressing to
bytes that hash to its id. A damaged image is refused with the disks untouched.

While writing, on worker threads: each chunk is checked again after decompression, the
target's bytes at that offset are read and compared, and only differing chunks are written
(so restoring the same image twice writes nothing the second time). Bytes beyond the image on
a larger target are left as they are.

An image made with `free_space: skip` names its used ranges: only those are compared and
written; free chunks are neither fetched nor touched, so whatever the target holds there stays
(the filesystem does not use those blocks).
"""

import os
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from onbox.errors import ImagingError, IntegrityError, OnboxError
from onbox.imaging import codec
from onbox.imaging.disks import disk_size
from onbox.imaging.pipeline import bounded_map, default_workers
from onbox.imaging.progress import Progress, Tracker
from onbox.imaging.usedmap import keep_only
from onbox.imaging.verify import check_chunks
from onbox.store.base import ImageStore
from onbox.store.records import DiskManifest
from schema.request import DiskFigures


@dataclass(frozen=True)
class RestoreReport:
    """Per disk: `bytes_read` = compressed chunk bytes read from the store, `bytes_written` and
    `bytes_skipped` = image bytes written to the target, or left because they already matched."""

    image_id: str
    box_ip: str
    disks: list[DiskFigures]
    elapsed: float

    @property
    def bytes_written(self) -> int:
        return sum(d.bytes_written for d in self.disks)


def restore_image(
    store: ImageStore,
    box_ip: str,
    image_ref: str,
    disks: Mapping[str, Path],
    *,
    progress: Progress | None = None,
    precheck: bool = True,
    workers: int | None = None,
) -> RestoreReport:
    """Restore image `image_ref` ("latest", an id, or "legacy") of `box_ip` onto `disks`."""
    started = time.monotonic()
    if not disks:
        raise ImagingError(f"restore of {box_ip}: no disks given")
    image = store.resolve(box_ip, image_ref)
    if image.kind == "legacy":
        from onbox.imaging.legacy import restore_legacy

        figures = restore_legacy(store, box_ip, disks, progress=progress, precheck=precheck)
        return RestoreReport(image.id, box_ip, figures, time.monotonic() - started)

    manifests = {m.disk: m for m in store.manifests(box_ip, image.id)}
    missing = sorted(set(disks) - set(manifests))
    if missing:
        raise ImagingError(
            f"image {box_ip}/{image.id} has no disk {', '.join(missing)} "
            f"(it has {', '.join(sorted(manifests)) or 'none'})"
        )
    for name, path in disks.items():
        target = disk_size(path)
        if target < manifests[name].size:
            raise ImagingError(
                f"refusing to restore {name}: target {path} has {target} bytes, "
                f"the image of {name} needs {manifests[name].size}"
            )
    workers = workers or default_workers()
    targets = [(box_ip, image.id, manifests[name]) for name in disks]
    report = check_chunks(store, targets, hashes=precheck, workers=workers)
    if report.problems:
        first = report.problems[0]
        raise IntegrityError(
            f"image {box_ip}/{image.id} is damaged ({len(report.problems)} bad chunk use(s), "
            f"first: {first.disk} offset {first.offset}: chunk {first.chunk_id} {first.kind}); "
            "no disk was touched"
        )
    figures = [
        _restore_disk(
            store, box_ip, image.id, manifests[name], path=path, workers=workers, progress=progress
        )
        for name, path in disks.items()
    ]
    return RestoreReport(image.id, box_ip, figures, time.monotonic() - started)


def _restore_disk(
    store: ImageStore,
    box_ip: str,
    image_id: str,
    manifest: DiskManifest,
    *,
    path: Path,
    workers: int,
    progress: Progress | None,
) -> DiskFigures:
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError as exc:
        raise ImagingError(f"cannot open {path} for writing: {exc.strerror}") from None
    free = manifest.free_bytes()
    tracker = Tracker(f"restore {manifest.disk}", manifest.size - free, progress)

    def put(index: int) -> tuple[int, int, int]:
        """(compressed bytes read, bytes written, bytes skipped) for one chunk."""
        cid = manifest.chunks[index]
        length = manifest.chunk_length(index)
        offset = index * manifest.chunk_size
        used = manifest.chunk_used(index)  # None: the whole chunk (raw)
        if used == []:
            return 0, 0, 0  # free space: not read, not written
        current = os.pread(fd, length, offset)
        if used is not None:
            # Only the used bytes are the image's; the rest of the target may hold anything.
            current = keep_only(current, used)
            length = sum(end - start for start, end in used)
        if cid is None:
            expected, read = codec.zeros(len(current)), 0
        else:
            # Hashing what the disk holds is cheaper than fetching and decompressing the
            # chunk; an unchanged disk is recognised without reading the store. (A zeroed
            # target, the common fresh case, skips that hash: it cannot match.)
            if not codec.is_zero(current) and codec.chunk_id(current) == cid:
                return 0, 0, length
            blob = store.get_chunk(cid)
            what = f"{box_ip} image {image_id} disk {manifest.disk} offset {offset}"
            expected, read = codec.checked(blob, cid, len(current), what), len(blob)
        if current == expected:
            return read, 0, length
        view = memoryview(expected)
        for start, end in used or [(0, len(view))]:
            done = start
            while done < end:
                done += os.pwrite(fd, view[done:end], offset + done)
        # Start writeback of this chunk now (Linux: FADV_DONTNEED on dirty pages queues them for
        # writing without waiting), so the disk works while later chunks are decompressed and
        # the final fsync has little left to wait for.
        os.posix_fadvise(fd, offset, len(view), os.POSIX_FADV_DONTNEED)
        return read, length, 0

    read = written = skipped = 0
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="restore") as pool:
            indexes = range(len(manifest.chunks))
            for r, w, s in bounded_map(pool, put, indexes, 2 * workers):
                read += r
                written += w
                skipped += s
                tracker.advance(w + s)
        os.fsync(fd)
    except OnboxError as exc:
        raise type(exc)(f"{exc.message}; {path} is partly restored") from None
    except OSError as exc:
        raise ImagingError(
            f"writing {path} failed: {exc.strerror}; it is partly restored"
        ) from None
    finally:
        os.close(fd)
    tracker.finish()
    return DiskFigures(
        disk=manifest.disk,
        size=manifest.size,
        bytes_read=read,
        bytes_written=written,
        bytes_skipped=skipped,
        bytes_free=free,
    )
