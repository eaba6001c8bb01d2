"""Check images: every chunk present, and (by default) decompressing to bytes that hash to its id.

Used by `testboxctl verify` and by restore's pre-check (before the first write). Each distinct
chunk is read once however many images and offsets use it; a problem is reported at every
offset where the chunk is used, named by box, image and disk.
"""

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from onbox.errors import ImageNotFound, IntegrityError, OnboxError, StoreError
from onbox.imaging import codec
from onbox.imaging.pipeline import bounded_map, default_workers
from onbox.imaging.progress import Progress, Tracker
from onbox.store.base import ImageStore
from onbox.store.legacy import pick_legacy
from onbox.store.records import DiskManifest

ProblemKind = Literal["missing", "corrupt", "unreadable", "damaged"]


@dataclass(frozen=True)
class ChunkProblem:
    box_ip: str
    image_id: str
    disk: str
    offset: int
    chunk_id: str | None
    kind: ProblemKind
    detail: str = ""

    def __str__(self) -> str:
        if self.kind == "damaged":
            return f"{self.box_ip} image {self.image_id}: damaged ({self.detail})"
        chunk = f" chunk {self.chunk_id}" if self.chunk_id else ""
        detail = f" ({self.detail})" if self.detail else ""
        return (
            f"{self.box_ip} image {self.image_id} disk {self.disk} offset {self.offset}:"
            f"{chunk} {self.kind}{detail}"
        )


@dataclass
class VerifyReport:
    images: list[tuple[str, str]] = field(default_factory=list)  # (box_ip, image_id) checked
    chunks_checked: int = 0
    bytes_checked: int = 0
    problems: list[ChunkProblem] = field(default_factory=list)
    checked_ids: set[str] = field(default_factory=set)  # chunks whose bytes were checked
    record_error: str | None = None  # why the verify record could not be written

    @property
    def ok(self) -> bool:
        return not self.problems

    def damaged_images(self) -> list[tuple[str, str]]:
        return sorted({(p.box_ip, p.image_id) for p in self.problems})


def check_chunks(
    store: ImageStore,
    targets: Iterable[tuple[str, str, DiskManifest]],
    *,
    hashes: bool = True,
    workers: int | None = None,
    progress: Progress | None = None,
    report: VerifyReport | None = None,
) -> VerifyReport:
    """Check the chunks of (box_ip, image_id, manifest) triples; problems go into the report."""
    report = report or VerifyReport()
    targets = list(targets)
    # chunk id -> (uncompressed length, every (box, image, disk, offset) using it)
    uses: dict[str, tuple[int, list[tuple[str, str, str, int]]]] = {}
    for box_ip, image_id, manifest in targets:
        for index, cid in enumerate(manifest.chunks):
            if cid is None:
                continue
            entry = uses.setdefault(cid, (manifest.chunk_length(index), []))
            entry[1].append((box_ip, image_id, manifest.disk, index * manifest.chunk_size))

    def check(item: tuple[str, int]) -> tuple[str, int, ProblemKind | None, str]:
        cid, length = item
        if not hashes:
            try:
                return cid, 0, (None if store.locate_chunk(cid) is not None else "missing"), ""
            except StoreError as exc:
                return cid, 0, "unreadable", exc.message
        try:
            blob = store.find_chunk(cid, length)
        except IntegrityError:
            return cid, 0, "missing", ""
        except StoreError as exc:
            return cid, 0, "unreadable", exc.message
        try:
            codec.checked(blob, cid, length, f"chunk {cid}")
        except OnboxError as exc:
            return cid, length, "corrupt", exc.message.split(": ")[-1]
        return cid, length, None, ""

    total = sum(length for length, _ in uses.values()) if hashes else None
    tracker = Tracker("verify", total, progress)
    workers = workers or default_workers()
    with ThreadPoolExecutor(workers, thread_name_prefix="verify") as pool:
        items = ((cid, length) for cid, (length, _) in uses.items())
        for cid, length, kind, detail in bounded_map(pool, check, items, 2 * workers):
            report.chunks_checked += 1
            report.bytes_checked += length
            if hashes:
                report.checked_ids.add(cid)
            tracker.advance(length)
            if kind is not None:
                for box_ip, image_id, disk, offset in uses[cid][1]:
                    report.problems.append(
                        ChunkProblem(box_ip, image_id, disk, offset, cid, kind, detail)
                    )
    tracker.finish()
    report.problems.sort(key=lambda p: (p.box_ip, p.image_id, p.disk, p.offset))
    return report


def verify_images(
    store: ImageStore,
    box_ip: str | None = None,
    image_id: str | None = None,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
    record: bool = True,
) -> VerifyReport:
    """Verify one image (box and id), every image of a box, or every image in the store.

    A legacy image is verified by decompressing its gz files (gzip's CRC and length check).
    With `record`, the result is merged into the store's verify record (`verifyrecord`), so
    a restore refuses an image with a chunk found bad before it writes anything.
    """
    from onbox.imaging.legacy import check_legacy

    report = VerifyReport()
    listing = store.scan(box_ip)
    images = listing.images
    damaged = listing.damaged
    if image_id is not None:
        images = [i for i in images if i.id == image_id]
        damaged = [d for d in damaged if d[1] == image_id]
        if not images and not damaged:
            where = f"box {box_ip}" if box_ip else "the store"
            raise ImageNotFound(f"no image {image_id!r} in {where}")
    for ip, iid, why in damaged:
        report.images.append((ip, iid))
        report.problems.append(ChunkProblem(ip, iid, "-", 0, None, "damaged", why))
    targets: list[tuple[str, str, DiskManifest]] = []
    for image in images:
        report.images.append((image.box_ip, image.id))
        if image.kind == "legacy":
            for f in pick_legacy(store.legacy_files(image.box_ip)):
                problem = check_legacy(store, image.box_ip, f)
                if problem is not None:
                    report.problems.append(problem)
            continue
        try:
            for manifest in store.manifests(image.box_ip, image.id):
                targets.append((image.box_ip, image.id, manifest))
        except OnboxError as exc:
            report.problems.append(
                ChunkProblem(image.box_ip, image.id, "-", 0, None, "damaged", exc.message)
            )
    check_chunks(store, targets, workers=workers, progress=progress, report=report)
    if record:
        from onbox.imaging.verifyrecord import write_verify_record

        bad = {
            p.chunk_id: (p.kind, p.detail)
            for p in report.problems
            if p.chunk_id is not None and p.kind in ("corrupt", "unreadable")
        }
        try:
            write_verify_record(
                store,
                images=report.images,
                damaged_images=set(report.damaged_images()),
                checked=report.checked_ids,
                bad=bad,
            )
        except StoreError as exc:
            report.record_error = f"verify record not written: {exc.message}"
    return report
