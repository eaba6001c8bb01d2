"""Restore an image onto a box's disks (contract §4), reading each chunk from the store once.

Before the first write (no chunk is read): every disk of the request must be in the image,
every target at least as large as its disk image, the image's records consistent (commit
record ↔ directory, manifest ↔ commit record, chunk count ↔ disk size), every chunk present
(a stat, `ImageStore.locate_chunk`), and no chunk known bad: a verify record
(`onbox.imaging.verifyrecord`) naming a chunk whose stored file is still the one verify saw
refuses the restore with the disks untouched.

While writing, on worker threads, per distinct chunk (a chunk used at several offsets is read
once and written to each): the target's bytes at each offset are hashed and offsets that
already hold the chunk are skipped; if any is left, the chunk is read once, decompressed,
checked against its hash and written where it differs. A chunk found bad here fails the
restore with `PartialRestore` (its disk and offset, and that the disk is partially restored);
the chunk is then recorded as known bad, so the next attempt refuses before writing. The
trade-off (one read instead of two, at the price of a partial disk when a chunk turned bad
since the last verify) is in docs/images.md.

An image made with `free_space: skip` names its used ranges: only those are compared and
written; free chunks are neither fetched nor touched, so whatever the target holds there stays
(the filesystem does not use those blocks). On a block device that can discard, the free
ranges are then discarded (`onbox.imaging.discard`, after the final fsync; never for a raw
image), and the report's notices say how much.

`latest` is the newest usable image: a damaged one (records that disagree) is skipped, and
the report's notices say which and why. An image named by id that is damaged is refused.
"""

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from onbox.errors import DamagedImage, ImagingError, IntegrityError, OnboxError, StoreError
from onbox.imaging import codec
from onbox.imaging.discard import discard_free_ranges
from onbox.imaging.disks import disk_size
from onbox.imaging.pipeline import bounded_map, restore_workers
from onbox.imaging.progress import Progress, Tracker
from onbox.imaging.readahead import ReadAhead
from onbox.imaging.targetmap import DataMap
from onbox.imaging.targetwriter import TargetWriter
from onbox.imaging.usedmap import complement
from onbox.imaging.verifyrecord import known_bad, record_bad_chunk
from onbox.store.base import ImageStore
from onbox.store.records import DiskManifest
from schema.image import ImageInfo
from schema.request import DiskFigures


class PartialRestore(IntegrityError):
    """A chunk was found bad after the first write: `disks` are partially restored."""

    def __init__(self, message: str, disks: list[str], offset: int) -> None:
        super().__init__(message)
        self.disks = disks
        self.offset = offset


@dataclass(frozen=True)
class RestoreReport:
    """Per disk: `bytes_read` = compressed chunk bytes read from the store, `bytes_written` and
    `bytes_skipped` = image bytes written to the target, or left because they already matched.
    `notices`: what the restore decided for the operator to know (a damaged image skipped)."""

    image_id: str
    box_ip: str
    disks: list[DiskFigures]
    elapsed: float
    notices: list[str] = field(default_factory=list)

    @property
    def bytes_written(self) -> int:
        return sum(d.bytes_written for d in self.disks)


def _candidates(store: ImageStore, box_ip: str, image_ref: str) -> list[ImageInfo]:
    if image_ref != "latest":
        return [store.resolve(box_ip, image_ref)]
    images = store.list_images(box_ip)
    if not images:
        store.resolve(box_ip, "latest")  # raises the reason
    return list(reversed(images))


def restore_image(
    store: ImageStore,
    box_ip: str,
    image_ref: str,
    disks: Mapping[str, Path],
    *,
    progress: Progress | None = None,
    precheck: bool = True,
    workers: int | None = None,
    discard: bool = True,
) -> RestoreReport:
    """Restore image `image_ref` ("latest", an id, or "legacy") of `box_ip` onto `disks`.

    precheck=False skips reading the verify records (the known-bad check); the presence
    check always runs, and the hash of every chunk is checked while writing either way.
    discard=False leaves the free ranges of a skip image alone even on a block device.
    """
    started = time.monotonic()
    if not disks:
        raise ImagingError(f"restore of {box_ip}: no disks given")
    notices: list[str] = []
    listing = store.scan(box_ip) if image_ref == "latest" else None
    if listing is not None:
        notices.extend(
            f"skipped damaged image {ip}/{iid}: {why}" for ip, iid, why in listing.damaged
        )
    for image in _candidates(store, box_ip, image_ref):
        if image.kind == "legacy":
            from onbox.imaging.legacy import restore_legacy

            try:
                figures = restore_legacy(store, box_ip, disks, progress=progress, precheck=precheck)
            except DamagedImage as exc:
                if image_ref != "latest":
                    raise
                notices.append(f"skipped damaged image {box_ip}/{image.id}: {exc.message}")
                continue
            return RestoreReport(image.id, box_ip, figures, time.monotonic() - started, notices)
        try:
            manifests = {m.disk: m for m in store.manifests(box_ip, image.id)}
        except DamagedImage as exc:
            if image_ref != "latest":
                raise
            notices.append(f"skipped damaged image {box_ip}/{image.id}: {exc.message}")
            continue
        figures = _restore_chunked(
            store,
            box_ip=box_ip,
            image_id=image.id,
            manifests=manifests,
            disks=disks,
            progress=progress,
            precheck=precheck,
            workers=workers,
            discard=discard,
            notices=notices,
        )
        return RestoreReport(image.id, box_ip, figures, time.monotonic() - started, notices)
    raise DamagedImage(f"box {box_ip} has no usable image: {'; '.join(notices)}")


def _restore_chunked(
    store: ImageStore,
    *,
    box_ip: str,
    image_id: str,
    manifests: dict[str, DiskManifest],
    disks: Mapping[str, Path],
    progress: Progress | None,
    precheck: bool,
    workers: int | None,
    discard: bool,
    notices: list[str],
) -> list[DiskFigures]:
    missing = sorted(set(disks) - set(manifests))
    if missing:
        raise ImagingError(
            f"image {box_ip}/{image_id} has no disk {', '.join(missing)} "
            f"(it has {', '.join(sorted(manifests)) or 'none'})"
        )
    for name, path in disks.items():
        target = disk_size(path)
        if target < manifests[name].size:
            raise ImagingError(
                f"refusing to restore {name}: target {path} has {target} bytes, "
                f"the image of {name} needs {manifests[name].size}"
            )
    workers = workers or restore_workers()
    _precheck(
        store,
        box_ip=box_ip,
        image_id=image_id,
        manifests=[manifests[n] for n in disks],
        workers=workers,
        known=precheck,
    )
    figures = []
    for name, path in disks.items():
        disk, note = _restore_disk(
            store,
            box_ip,
            image_id,
            manifests[name],
            path=path,
            workers=workers,
            progress=progress,
            discard=discard,
        )
        figures.append(disk)
        if note:
            notices.append(f"{name}: {note}")
    return figures


def _precheck(
    store: ImageStore,
    *,
    box_ip: str,
    image_id: str,
    manifests: list[DiskManifest],
    workers: int,
    known: bool,
) -> None:
    """Every chunk present (a stat each, no read) and none known bad; else nothing written."""
    first_use: dict[str, tuple[str, int]] = {}
    for m in manifests:
        for index, cid in enumerate(m.chunks):
            if cid is not None and cid not in first_use:
                first_use[cid] = (m.disk, index * m.chunk_size)
    bad = known_bad(store) if known else {}

    def check(cid: str) -> str | None:
        try:
            item = store.locate_chunk(cid)
        except StoreError as exc:
            return f"unreadable ({exc.message})"
        if item is None:
            return "missing"
        seen = bad.get(cid)
        if seen is not None and seen.matches(item):
            return f"known bad: {seen.describe()}"
        return None

    with ThreadPoolExecutor(workers, thread_name_prefix="precheck") as pool:
        ids = list(first_use)
        problems = [
            (cid, why)
            for cid, why in zip(ids, bounded_map(pool, check, ids, 4 * workers), strict=True)
            if why is not None
        ]
    if problems:
        cid, why = problems[0]
        disk, offset = first_use[cid]
        raise IntegrityError(
            f"image {box_ip}/{image_id} cannot be restored ({len(problems)} bad chunk(s), "
            f"first: {disk} offset {offset}: chunk {cid} {why}); no disk was touched"
        )


def _restore_disk(
    store: ImageStore,
    box_ip: str,
    image_id: str,
    manifest: DiskManifest,
    *,
    path: Path,
    workers: int,
    progress: Progress | None,
    discard: bool,
) -> tuple[DiskFigures, str]:
    """Restore one disk; (its figures, the discard outcome for the log or "")."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError as exc:
        raise ImagingError(f"cannot open {path} for writing: {exc.strerror}") from None
    free = manifest.free_bytes()
    tracker = Tracker(f"restore {manifest.disk}", manifest.size - free, progress)
    # Each distinct chunk is one work item holding every index it is used at (in order of
    # first use), so it is read from the store at most once.
    groups: dict[str | None, list[int]] = {}
    work: list[tuple[str | None, list[int]]] = []
    for index, cid in enumerate(manifest.chunks):
        if cid is None:
            work.append((None, [index]))
            continue
        group = groups.get(cid)
        if group is None:
            group = groups[cid] = []
            work.append((cid, group))
        group.append(index)

    # Taken before the first write (onbox.imaging.targetmap says why).
    data_map = DataMap.of(fd, manifest.size)
    # Past the page cache where the target allows (onbox.imaging.targetwriter says why).
    writer = TargetWriter(path, fd, manifest.chunk_size, fillers=workers)
    write = writer.write

    def current_at(index: int) -> tuple[bytes, list[tuple[int, int]] | None, int]:
        """(the target's bytes of chunk `index` as the image sees them, its used ranges or
        None for all, the image bytes it holds)."""
        length, offset = manifest.chunk_length(index), index * manifest.chunk_size
        used = manifest.chunk_used(index)  # None: the whole chunk (raw)
        counted = length if used is None else sum(e - s for s, e in used)
        if data_map.is_hole(offset, length):
            return codec.zeros(length), used, counted
        if used is None:
            return os.pread(fd, length, offset), None, length
        # Only the used bytes are the image's; the rest of the target may hold anything and
        # is neither read nor written.
        return _read_ranges(fd, offset, length, used), used, counted

    def write_used(data: bytes, index: int, used: list[tuple[int, int]] | None) -> None:
        offset = index * manifest.chunk_size
        if used is None:
            write(data, offset)
            return
        view = memoryview(data)
        for start, stop in used:
            write(view[start:stop], offset + start)

    def put(item: tuple[str | None, list[int]]) -> tuple[int, int, int]:
        """(compressed bytes read, bytes written, bytes skipped) for one chunk's uses."""
        cid, indexes = item
        if cid is None:
            index = indexes[0]
            if manifest.chunk_used(index) == []:
                return 0, 0, 0  # free space: not read, not written
            current, used, counted = current_at(index)
            if codec.is_zero(current):
                return 0, 0, counted
            write_used(codec.zeros(len(current)), index, used)
            return 0, counted, 0
        # Hashing what the disk holds is cheaper than fetching and decompressing the chunk;
        # an unchanged disk is recognised without reading the store. (A zeroed target, the
        # common fresh case, skips that hash: it cannot match.)
        todo: list[tuple[int, list[tuple[int, int]] | None, int]] = []
        skipped = 0
        for index in indexes:
            if manifest.chunk_used(index) == []:
                continue
            current, used, counted = current_at(index)
            if not codec.is_zero(current) and codec.chunk_id(current) == cid:
                skipped += counted
            else:
                todo.append((index, used, counted))
        if not todo:
            return 0, 0, skipped
        first = todo[0][0]
        offset, length = first * manifest.chunk_size, manifest.chunk_length(first)
        what = f"{box_ip} image {image_id} disk {manifest.disk} offset {offset}"
        try:
            blob = ahead.take(cid, length)
        except IntegrityError:
            raise _Bad(offset, cid, "missing", f"{what}: chunk {cid} is missing") from None
        # Decompressed straight into the writer's buffer, checked there, written from there.
        buf = writer.lease()
        try:
            with memoryview(buf) as whole, whole[:length] as data:
                codec.checked_into(blob, cid, data, what)
            pieces: list[tuple[int, int, int]] = []
            written = 0
            for index, used, counted in todo:
                at = index * manifest.chunk_size
                if manifest.chunk_length(index) != length:
                    raise _Bad(at, cid, "damaged", f"{what}: chunk {cid} used with two lengths")
                # Only the used ranges of a skip image's chunk; the rest is left as it is.
                ranges = used if used is not None else [(0, length)]
                pieces += [(start, stop, at + start) for start, stop in ranges]
                written += counted
        except IntegrityError as exc:
            writer.give_back(buf)
            raise _Bad(offset, cid, "corrupt", exc.message) from None
        except BaseException:
            writer.give_back(buf)
            raise
        writer.write_leased(buf, pieces)
        return len(blob), written, skipped

    def certain(item: tuple[str | None, list[int]]) -> tuple[str, int] | None:
        """(id, length) of a chunk with a use in a hole of the target (see readahead)."""
        cid, indexes = item
        if cid is None:
            return None  # a zero chunk: nothing to read
        for index in indexes:
            offset, length = index * manifest.chunk_size, manifest.chunk_length(index)
            if manifest.chunk_used(index) != [] and data_map.is_hole(offset, length):
                return cid, manifest.chunk_length(indexes[0])
        return None

    ahead = ReadAhead(store.find_chunk, [certain(item) for item in work])

    def handed_out() -> Iterator[tuple[str | None, list[int]]]:
        for position, item in enumerate(work):
            ahead.advance(position)
            yield item

    read = written = skipped = 0
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="restore") as pool:
            for r, w, s in bounded_map(pool, put, handed_out(), 2 * workers):
                read += r
                written += w
                skipped += s
                tracker.advance(w + s)
        writer.close()
        os.fsync(fd)
        # Only the ranges the manifest records as free, after the image's bytes are durable.
        discarded = (
            discard_free_ranges(fd, complement(manifest.used, manifest.size))
            if discard and manifest.used is not None
            else None
        )
    except _Bad as bad:
        if bad.kind == "corrupt":
            _remember(store, bad.cid, box_ip, bad.message)
        raise PartialRestore(
            f"{bad.message}; restore of {manifest.disk} stopped at offset {bad.offset}: "
            f"{path} is partially restored (restore again, or another image, to repair it)",
            [manifest.disk],
            bad.offset,
        ) from None
    except OnboxError as exc:
        raise PartialRestore(
            f"{exc.message}; {path} is partially restored", [manifest.disk], 0
        ) from None
    except OSError as exc:
        raise PartialRestore(
            f"writing {path} failed: {exc.strerror}; it is partially restored", [manifest.disk], 0
        ) from None
    finally:
        ahead.close()
        with contextlib.suppress(OSError):
            writer.close()  # after an error: the restore's own error is the one to report
        os.close(fd)
    tracker.finish()
    figures = DiskFigures(
        disk=manifest.disk,
        size=manifest.size,
        bytes_read=read,
        bytes_written=written,
        bytes_skipped=skipped,
        bytes_free=free,
    )
    return figures, discarded.note if discarded is not None else ""


def _read_ranges(fd: int, offset: int, length: int, used: list[tuple[int, int]]) -> bytes:
    """The target's bytes in the used ranges of a chunk, zeros elsewhere."""
    if used == [(0, length)]:
        return os.pread(fd, length, offset)
    buf = bytearray(length)
    for start, end in used:
        part = os.pread(fd, end - start, offset + start)
        buf[start : start + len(part)] = part
    return bytes(buf)


class _Bad(Exception):
    def __init__(self, offset: int, cid: str, kind: str, message: str) -> None:
        super().__init__(message)
        self.offset, self.cid, self.kind, self.message = offset, cid, kind, message


def _remember(store: ImageStore, cid: str, box_ip: str, detail: str) -> None:
    """Record a chunk a restore found corrupt, so the next attempt refuses before writing.
    Best effort: a share that cannot take the record must not hide the restore's error."""
    with contextlib.suppress(OnboxError):
        record_bad_chunk(store, f"restore-{box_ip}", cid, "corrupt", detail)
