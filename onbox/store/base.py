"""The image store interface: what the engine needs from wherever chunks and records live.

Two backends implement it: the filesystem on the backup share (`fs.FilesystemStore`) and
memory (`memory.MemoryStore`, for tests). The store moves opaque bytes and records; compression,
hashing and the gc protocol live in `onbox.imaging`, so both backends behave the same by
construction and one contract test suite covers both.

Chunk blobs are the zstd-compressed bytes of a chunk, named by the SHA-256 of the uncompressed
bytes. Leases (see docs/images.md, "gc safety") name chunks a running backup references or is
about to reference; gc never removes a leased chunk.
"""

import abc
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from onbox.errors import ImageNotFound, IntegrityError
from onbox.store.records import CommitRecord, DiskManifest
from schema.image import ImageInfo

LEGACY_ID = "legacy"


@dataclass(frozen=True)
class ChunkStat:
    id: str
    stored_bytes: int
    mtime: float


@dataclass(frozen=True)
class PendingImage:
    """An image directory without a commit record: an interrupted (or running) backup."""

    box_ip: str
    image_id: str
    mtime: float


@dataclass(frozen=True)
class LegacyFile:
    """A seed image `<ip>/<disk>.gz` or `<ip>/<disk>.raw.gz` (gzip of the raw disk)."""

    disk: str
    name: str
    stored_bytes: int
    mtime: float


class Lease(abc.ABC):
    """A running backup's promise to gc: these chunks are (about to be) referenced."""

    @abc.abstractmethod
    def add(self, chunk_id: str) -> None:
        """Record `chunk_id`; visible to gc (durably, on a share) when this returns."""

    @abc.abstractmethod
    def release(self) -> None:
        """Drop the lease (after the commit record is written, or on failure)."""


class ImageStore(abc.ABC):
    # --- chunks -------------------------------------------------------------------------
    @abc.abstractmethod
    def put_chunk(self, chunk_id: str, blob: bytes) -> bool:
        """Store a compressed chunk atomically; False when it was already there."""

    @abc.abstractmethod
    def has_chunk(self, chunk_id: str) -> bool: ...

    @abc.abstractmethod
    def stat_chunk(self, chunk_id: str) -> int | None:
        """The stored (compressed) size of a chunk, None when it is not in the store."""

    @abc.abstractmethod
    def get_chunk(self, chunk_id: str) -> bytes:
        """The compressed blob; IntegrityError when the chunk is missing."""

    @abc.abstractmethod
    def chunk_stats(self) -> Iterator[ChunkStat]:
        """Every stored chunk (order unspecified)."""

    # --- gc support: trash is a reversible delete -----------------------------------------
    @abc.abstractmethod
    def trash_chunk(self, gc_id: str, chunk_id: str) -> bool:
        """Move a chunk out of the store (atomically); False when it was gone already."""

    def remove_stale_temps(self, older_than: float) -> int:
        """Leftovers of chunk writes killed half-way (backends without temp files: none)."""
        del older_than
        return 0

    @abc.abstractmethod
    def untrash_chunk(self, gc_id: str, chunk_id: str) -> None:
        """Put a trashed chunk back (unless a backup stored it again meanwhile)."""

    @abc.abstractmethod
    def empty_trash(self, gc_id: str) -> int:
        """Delete what this gc run trashed; returns the bytes freed."""

    # --- leases -------------------------------------------------------------------------
    @abc.abstractmethod
    def open_lease(self, lease_id: str) -> Lease: ...

    @abc.abstractmethod
    def leased_chunks(self, stale_after: float) -> set[str]:
        """Chunks named by live leases; leases not touched for `stale_after` s are ignored."""

    @abc.abstractmethod
    def live_leases(self, stale_after: float) -> set[str]:
        """Ids of leases touched within `stale_after` s (a lease is named after its image)."""

    @abc.abstractmethod
    def remove_stale_leases(self, stale_after: float) -> list[str]: ...

    # --- images -------------------------------------------------------------------------
    @abc.abstractmethod
    def write_manifest(self, box_ip: str, image_id: str, manifest: DiskManifest) -> str:
        """Write a disk manifest atomically; returns the SHA-256 hex of its bytes."""

    @abc.abstractmethod
    def read_manifest_bytes(self, box_ip: str, image_id: str, disk: str) -> bytes: ...

    @abc.abstractmethod
    def commit(self, record: CommitRecord) -> None:
        """Write the commit record, atomically, last: from now on the image exists."""

    @abc.abstractmethod
    def read_commit(self, box_ip: str, image_id: str) -> CommitRecord:
        """ImageNotFound when there is no committed image of that id."""

    @abc.abstractmethod
    def box_ips(self) -> list[str]:
        """Boxes that have a directory in the store (sorted)."""

    @abc.abstractmethod
    def committed_ids(self, box_ip: str) -> list[str]: ...

    @abc.abstractmethod
    def pending_images(self) -> list[PendingImage]: ...

    @abc.abstractmethod
    def delete_image(self, box_ip: str, image_id: str) -> None:
        """Make the image disappear at once (atomically), then remove its files."""

    @abc.abstractmethod
    def remove_pending(self, box_ip: str, image_id: str) -> bool:
        """Remove an uncommitted image directory; False (and nothing removed) if committed."""

    # --- legacy images (the seed's gz files) -----------------------------------------------
    @abc.abstractmethod
    def legacy_files(self, box_ip: str) -> list[LegacyFile]: ...

    @abc.abstractmethod
    def open_legacy(self, box_ip: str, name: str) -> BinaryIO: ...

    @abc.abstractmethod
    def retire_legacy(self, box_ip: str, name: str) -> str:
        """After import: rename `<disk>.gz` to `<disk>.gz.imported` (kept, no longer listed)."""

    # --- derived, shared by both backends ---------------------------------------------------
    def list_images(self, box_ip: str | None = None) -> list[ImageInfo]:
        """Committed images (and legacy images), oldest first, newest last.

        Reads only commit records, never manifests: the controller calls this for every box.
        """
        boxes = [box_ip] if box_ip is not None else self.box_ips()
        images: list[ImageInfo] = []
        for ip in boxes:
            images.extend(self.read_commit(ip, iid).info() for iid in self.committed_ids(ip))
            legacy = self.legacy_info(ip)
            if legacy is not None:
                images.append(legacy)
        images.sort(key=lambda i: (i.created, i.box_ip, i.id))
        return images

    def legacy_info(self, box_ip: str) -> ImageInfo | None:
        from onbox.store.legacy import legacy_image_info

        return legacy_image_info(box_ip, self.legacy_files(box_ip))

    def read_manifest(self, box_ip: str, image_id: str, disk: str) -> DiskManifest:
        """A disk's manifest, checked against the SHA-256 its commit record names."""
        record = self.read_commit(box_ip, image_id)
        entry = next((d for d in record.disks if d.disk == disk), None)
        if entry is None:
            raise ImageNotFound(f"image {box_ip}/{image_id} has no disk {disk}")
        data = self.read_manifest_bytes(box_ip, image_id, disk)
        if hashlib.sha256(data).hexdigest() != entry.manifest_sha256:
            raise IntegrityError(
                f"image {box_ip}/{image_id}: manifest of {disk} does not match its commit record"
            )
        return DiskManifest.model_validate_json(data)

    def manifests(self, box_ip: str, image_id: str) -> list[DiskManifest]:
        record = self.read_commit(box_ip, image_id)
        return [self.read_manifest(box_ip, image_id, d.disk) for d in record.disks]

    def image_chunk_ids(self, box_ip: str, image_id: str) -> set[str] | None:
        """Chunks an image references; None when it was deleted while we read it.

        A committed image whose manifests cannot be read raises: a caller deciding what is
        garbage must stop rather than treat that image's chunks as unreferenced.
        """
        try:
            return set().union(*(m.stored_ids() for m in self.manifests(box_ip, image_id)))
        except (ImageNotFound, IntegrityError):
            if image_id not in self.committed_ids(box_ip):
                return None
            raise

    def referenced_chunks(self) -> set[str]:
        """Every chunk id some committed image references (reads every manifest)."""
        referenced: set[str] = set()
        for ip in self.box_ips():
            for iid in self.committed_ids(ip):
                referenced |= self.image_chunk_ids(ip, iid) or set()
        return referenced

    def resolve(self, box_ip: str, ref: str) -> ImageInfo:
        """An image of `box_ip` by id, "latest" (newest, legacy included) or "legacy"."""
        images = self.list_images(box_ip)
        if not images:
            raise ImageNotFound(f"box {box_ip} has no images")
        if ref == "latest":
            return images[-1]
        for image in images:
            if image.id == ref:
                return image
        known = ", ".join(i.id for i in images)
        raise ImageNotFound(f"box {box_ip} has no image {ref!r} (images: {known})")
