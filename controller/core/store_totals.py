"""Store totals for the status page and the Prometheus metrics: what the images hold, what the
store spends on them, and the two ratios that explain the difference.

Pure: the image records come from the observation, the store's own size (the sum over its chunk
files, each counted once) is measured by `controller.io.store_usage` and passed in.

- logical bytes: the disks as backed up (sum of disk sizes over all images);
- referenced bytes: each image's chunks as stored (compressed), a chunk shared by two images
  counted twice: what the images would take without deduplication;
- stored bytes: the chunk files in the store, each once.

dedup ratio = referenced / stored; compression ratio = logical / referenced (all-zero chunks are
never stored, so they count as compression); together logical / stored. Legacy gz images have no
chunk figures and are left out of the three sums (counted in `legacy_images`).
"""

from collections.abc import Iterable

from pydantic import BaseModel

from schema.image import ImageInfo


class StoreTotals(BaseModel):
    images: int
    legacy_images: int
    logical_bytes: int
    referenced_bytes: int
    stored_bytes: int
    chunks: int

    @property
    def dedup_ratio(self) -> float | None:
        return self.referenced_bytes / self.stored_bytes if self.stored_bytes else None

    @property
    def compression_ratio(self) -> float | None:
        return self.logical_bytes / self.referenced_bytes if self.referenced_bytes else None

    @property
    def total_ratio(self) -> float | None:
        return self.logical_bytes / self.stored_bytes if self.stored_bytes else None


def store_totals(images: Iterable[ImageInfo], stored_bytes: int, chunks: int) -> StoreTotals:
    chunked = legacy = logical = referenced = 0
    for image in images:
        if image.kind == "legacy":
            legacy += 1
            continue
        chunked += 1
        logical += sum(d.size for d in image.disks)
        referenced += sum(d.stored_bytes for d in image.disks)
    return StoreTotals(
        images=chunked,
        legacy_images=legacy,
        logical_bytes=logical,
        referenced_bytes=referenced,
        stored_bytes=stored_bytes,
        chunks=chunks,
    )
