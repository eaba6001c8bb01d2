"""The image store: chunks, leases, trash and image records, once, on top of a narrow backend.

`ImageStore` gives the names of `onbox.store.layout` their meaning over any
`onbox.store.backend.Backend` (the backup share, or memory in tests), so both backends behave
the same by construction and one contract suite covers both. The store moves opaque bytes and
records; compression, hashing and the gc protocol live in `onbox.imaging`.

Chunk blobs are the zstd-compressed bytes of a chunk, named by the SHA-256 of the uncompressed
bytes. Leases (docs/images.md, "gc safety") name chunks a running backup references or is
about to reference; gc never removes a leased chunk.

Everything read here is hostile input (docs/threat-model.md): a record that is not what its
name says (a commit record whose id is not its directory, a manifest shorter than its disk, a
naive timestamp, a directory where commit.json belongs) is `DamagedImage`, and the listing
methods report it as one line naming box and path instead of stopping the whole store.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import BinaryIO

from pydantic import ValidationError

from onbox.errors import DamagedImage, ImageNotFound, IntegrityError, StoreError
from onbox.shareio import MANIFEST_LIMIT, RECORD_LIMIT
from onbox.store import layout
from onbox.store.backend import Backend, Item, StoreMissing
from onbox.store.records import CommitRecord, DiskManifest, is_chunk_id
from schema.image import ImageInfo
from schema.layout import IMAGES_DIR

LEGACY_ID = "legacy"
STORE_FORMAT = 1  # store/config.json "format"; a store of another format is refused on open
DELETING = ".deleting-"

_KIND_WORDS = {
    "symlink": "is a symbolic link (never followed)",
    "other": "is not a regular file or directory (FIFO, socket or device)",
    "file": "is a file where a directory belongs",
    "dir": "is a directory where a file belongs",
}


def chunk_limit(length: int | None) -> int:
    """The most bytes a stored chunk of `length` uncompressed bytes may take (zstd's bound)."""
    from onbox.store.records import MAX_CHUNK_SIZE

    n = MAX_CHUNK_SIZE if length is None else length
    return n + (n >> 7) + (1 << 16)


@dataclass(frozen=True)
class ChunkStat:
    id: str
    stored_bytes: int
    mtime: float


@dataclass(frozen=True)
class PendingImage:
    """An image directory without a commit record: an interrupted (or running) backup, or
    the leftover of a deletion that was killed (`image_id` starts with `.deleting-`)."""

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


@dataclass
class StoreListing:
    """Images that can be used, and one line for everything that is damaged or foreign."""

    images: list[ImageInfo] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # (box, image id, why) of committed images whose records are damaged (also in problems)
    damaged: list[tuple[str, str, str]] = field(default_factory=list)


class Lease:
    """A running backup's promise to gc: these chunks are (about to be) referenced."""

    def __init__(self, store: ImageStore, lease_id: str) -> None:
        self._store = store
        self._name = layout.lease(lease_id)
        self._lock = threading.Lock()
        self._open = True
        store.backend.append(self._name, b"")  # exists, durably, before the first chunk

    def add(self, chunk_id: str) -> None:
        """Record `chunk_id`; visible to gc (durably, on a share) when this returns."""
        if not is_chunk_id(chunk_id):
            raise StoreError(f"not a chunk id: {chunk_id!r}")
        with self._lock:
            if not self._open:
                raise StoreError(f"lease {self._name} already released")
            self._store.backend.append(self._name, f"{chunk_id}\n".encode())

    def release(self) -> None:
        """Drop the lease (after the commit record is written, or on failure)."""
        with self._lock:
            if self._open:
                self._open = False
                self._store.backend.delete(self._name)


class ImageStore:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._config_checked = False
        self._config_lock = threading.Lock()

    @property
    def where(self) -> str:
        return self.backend.where

    def _path(self, name: str) -> str:
        return f"{self.backend.where}/{name}"

    def _clock(self) -> float:
        clock = getattr(self.backend, "clock", None)
        return float(clock()) if clock is not None else time.time()

    # --- config: the store's format, checked on open, written on the first write -------------
    def check_config(self) -> dict[str, object] | None:
        """The store's config record, None for a store an older version made (no config yet).

        A config of another format, or one that cannot be read, is a StoreError: this program
        must not write into a store whose layout it does not know.
        """
        try:
            data = self.backend.load(layout.CONFIG, RECORD_LIMIT)
        except StoreMissing:
            return None
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError):
            raise StoreError(f"{self._path(layout.CONFIG)}: not valid JSON") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("format"), int):
            raise StoreError(f"{self._path(layout.CONFIG)}: no integer 'format' field")
        if doc["format"] != STORE_FORMAT:
            raise StoreError(
                f"{self._path(layout.CONFIG)}: store format {doc['format']} is not the format "
                f"this version reads ({STORE_FORMAT}); nothing done"
            )
        self._config_checked = True
        return doc

    def _before_write(self) -> None:
        """On the first write: adopt a store without config (older versions) by creating it."""
        if self._config_checked:
            return
        with self._config_lock:
            if self._config_checked:
                return
            if self.check_config() is None:
                doc = {
                    "format": STORE_FORMAT,
                    "kind": "testboxctl-chunk-store",
                    "chunk_id": "sha256",
                    "compression": "zstd",
                    "created": datetime.now(UTC).isoformat(),
                }
                self.backend.create(layout.CONFIG, json.dumps(doc, indent=1).encode() + b"\n")
                self.check_config()  # another writer may have won: its config must be ours too

    # --- chunks -------------------------------------------------------------------------
    def put_chunk(self, chunk_id: str, blob: bytes, *, replace: bool = False) -> bool:
        """Store a compressed chunk (durable at the next flush/commit); False when it was there.

        replace=True overwrites what is stored under the name (a chunk found damaged).
        """
        name = layout.chunk(chunk_id)
        self._before_write()
        if not replace:
            item = self.backend.stat(name)
            if item is not None and item.kind == "file":
                return False
        self.backend.store(name, blob, durable=False)
        return True

    def has_chunk(self, chunk_id: str) -> bool:
        return self.stat_chunk(chunk_id) is not None

    def stat_chunk(self, chunk_id: str) -> int | None:
        """The stored size of a chunk in `store/chunks/`, None when it is not a file there."""
        item = self.backend.stat(layout.chunk(chunk_id))
        return item.size if item is not None and item.kind == "file" else None

    def chunk_item(self, chunk_id: str) -> Item | None:
        """The chunk's entry (size and mtime identify what a verify record saw)."""
        item = self.backend.stat(layout.chunk(chunk_id))
        return item if item is not None and item.kind == "file" else None

    def get_chunk(self, chunk_id: str, length: int | None = None) -> bytes:
        """The compressed blob from `store/chunks/`; IntegrityError when it is missing."""
        try:
            return self.backend.load(layout.chunk(chunk_id), chunk_limit(length))
        except StoreMissing:
            raise IntegrityError(f"chunk {chunk_id} is missing from the store") from None

    def find_chunk(self, chunk_id: str, length: int | None = None) -> bytes:
        """Like get_chunk, but also from the trash of a gc run (one killed before its sweep).

        For readers only (verify, restore): a chunk there is still the store's, the next gc
        puts it back. Backups never dedup against the trash.
        """
        try:
            return self.get_chunk(chunk_id, length)
        except IntegrityError:
            for gc_id in self.trash_runs():
                try:
                    return self.backend.load(
                        layout.trash_chunk(gc_id, chunk_id), chunk_limit(length)
                    )
                except StoreMissing:
                    continue
            raise

    def locate_chunk(self, chunk_id: str) -> Item | None:
        """Where find_chunk would read (presence check by stat, no read), None if nowhere."""
        item = self.chunk_item(chunk_id)
        if item is not None:
            return item
        for gc_id in self.trash_runs():
            found = self.backend.stat(layout.trash_chunk(gc_id, chunk_id))
            if found is not None and found.kind == "file":
                return found
        return None

    def chunk_stats(self, problems: list[str] | None = None) -> Iterator[ChunkStat]:
        """Every chunk stored in `store/chunks/` (entries that are not files are reported)."""
        for sub in self.backend.list(layout.CHUNKS):
            prefix = f"{layout.CHUNKS}/{sub.name}"
            if sub.kind != "dir":
                _note(problems, f"{self._path(prefix)}: {_KIND_WORDS[sub.kind]}; skipped")
                continue
            try:
                items = self.backend.list(prefix)
            except StoreError as exc:
                _note(problems, exc.message)
                continue
            for item in items:
                if not item.name.endswith(layout.CHUNK_SUFFIX):
                    continue
                cid = item.name[: -len(layout.CHUNK_SUFFIX)]
                if not is_chunk_id(cid):
                    continue
                if item.kind != "file":
                    _note(problems, f"{self._path(prefix)}/{item.name}: {_KIND_WORDS[item.kind]}")
                    continue
                yield ChunkStat(cid, item.size, item.mtime)

    def flush(self) -> None:
        """Every chunk stored so far is durable, names included."""
        self.backend.flush()

    def remove_stale_temps(self, older_than: float) -> int:
        """Temp files of chunk writes killed before their rename, older than `older_than` s."""
        removed = 0
        for sub in self.backend.list(layout.CHUNKS):
            if sub.kind == "dir":
                removed += self.backend.sweep_temps(f"{layout.CHUNKS}/{sub.name}", older_than)
        return removed

    # --- gc support: trash is a reversible delete -----------------------------------------
    def trash_chunk(self, gc_id: str, chunk_id: str) -> bool:
        """Move a chunk out of the store (atomically); False when it was gone already."""
        try:
            return self.backend.move(layout.chunk(chunk_id), layout.trash_chunk(gc_id, chunk_id))
        except StoreMissing:
            return False

    def untrash_chunk(self, gc_id: str, chunk_id: str) -> bool:
        """Put a trashed chunk back (unless a backup stored it again meanwhile: its copy is
        as good); False when it was no longer in that trash."""
        source = layout.trash_chunk(gc_id, chunk_id)
        try:
            if not self.backend.move(source, layout.chunk(chunk_id)):
                self.backend.delete(source)
        except StoreMissing:
            return False
        return True

    def empty_trash(self, gc_id: str) -> int:
        """Delete what this gc run trashed; returns the bytes freed."""
        directory = layout.trash_dir(gc_id)
        freed = sum(i.size for i in self.backend.list(directory) if i.kind == "file")
        self.backend.delete_tree(directory)
        return freed

    def trash_runs(self, problems: list[str] | None = None) -> list[str]:
        """Ids of gc runs with a trash directory (a running gc, or one that was killed)."""
        runs = []
        for item in self.backend.list(layout.TRASH):
            if item.kind != "dir":
                _note(problems, f"{self._path(layout.TRASH)}/{item.name}: {_KIND_WORDS[item.kind]}")
            elif layout.TOKEN.fullmatch(item.name):
                runs.append(item.name)
        return runs

    def trashed_chunks(self, gc_id: str) -> list[str]:
        out = []
        for item in self.backend.list(layout.trash_dir(gc_id)):
            cid = item.name[: -len(layout.CHUNK_SUFFIX)]
            if item.kind == "file" and item.name.endswith(layout.CHUNK_SUFFIX) and is_chunk_id(cid):
                out.append(cid)
        return out

    # --- leases -------------------------------------------------------------------------
    def open_lease(self, lease_id: str) -> Lease:
        self._before_write()
        return Lease(self, lease_id)

    def _leases(self, problems: list[str] | None) -> Iterator[tuple[Item, str]]:
        for item in self.backend.list(layout.LEASES):
            if not item.name.endswith(layout.LEASE_SUFFIX):
                continue
            lease_id = item.name[: -len(layout.LEASE_SUFFIX)]
            if item.kind != "file" or not layout.TOKEN.fullmatch(lease_id):
                what = _KIND_WORDS.get(item.kind, "") if item.kind != "file" else "bad name"
                _note(problems, f"{self._path(layout.LEASES)}/{item.name}: {what}; ignored")
                continue
            yield item, lease_id

    def leased_chunks(self, stale_after: float, problems: list[str] | None = None) -> set[str]:
        """Chunks named by live leases; leases not touched for `stale_after` s are ignored.

        A damaged lease (not ASCII, bad lines) still protects every valid id it names.
        """
        now = self._clock()
        leased: set[str] = set()
        for item, lease_id in self._leases(problems):
            if now - item.mtime > stale_after:
                continue
            try:
                data = self.backend.load(layout.lease(lease_id), MANIFEST_LIMIT)
            except StoreMissing:
                continue
            except StoreError as exc:
                _note(problems, exc.message)
                continue
            words = data.split()
            good = {w.decode("ascii") for w in words if _is_chunk_id_bytes(w)}
            if len(good) != len(set(words)):
                _note(
                    problems, f"{self._path(layout.lease(lease_id))}: lines that are not chunk ids"
                )
            leased |= good
        return leased

    def live_leases(self, stale_after: float) -> set[str]:
        """Ids of leases touched within `stale_after` s (a lease is named after its image)."""
        now = self._clock()
        return {lid for item, lid in self._leases(None) if now - item.mtime <= stale_after}

    def remove_stale_leases(self, stale_after: float) -> list[str]:
        now = self._clock()
        removed = []
        for item, lease_id in list(self._leases(None)):
            if now - item.mtime > stale_after and self.backend.delete(layout.lease(lease_id)):
                removed.append(lease_id)
        return removed

    # --- images -------------------------------------------------------------------------
    def write_manifest(self, box_ip: str, image_id: str, manifest: DiskManifest) -> str:
        """Write a disk manifest atomically; returns the SHA-256 hex of its bytes."""
        name = layout.manifest(box_ip, image_id, manifest.disk)
        self._before_write()
        data = manifest.model_dump_json().encode()
        self.backend.store(name, data)
        return hashlib.sha256(data).hexdigest()

    def read_manifest_bytes(self, box_ip: str, image_id: str, disk: str) -> bytes:
        name = layout.manifest(box_ip, image_id, disk)
        try:
            return self.backend.load(name, MANIFEST_LIMIT)
        except StoreMissing:
            raise DamagedImage(
                f"image {box_ip}/{image_id}: {self._path(name)} is missing"
            ) from None
        except StoreError as exc:
            raise DamagedImage(f"image {box_ip}/{image_id}: {exc.message}") from None

    def commit(self, record: CommitRecord) -> None:
        """Write the commit record, atomically, last: from now on the image exists."""
        self.flush()
        self._before_write()
        name = layout.commit(record.box_ip, record.id)
        self.backend.store(name, record.model_dump_json(indent=1).encode())

    def read_commit(self, box_ip: str, image_id: str) -> CommitRecord:
        """ImageNotFound when there is no such image, DamagedImage when its record is bad."""
        name = layout.commit(box_ip, image_id)
        try:
            data = self.backend.load(name, RECORD_LIMIT)
        except StoreMissing:
            raise ImageNotFound(f"box {box_ip} has no image {image_id!r}") from None
        except StoreError as exc:
            raise DamagedImage(f"image {box_ip}/{image_id}: {exc.message}") from None
        try:
            record = CommitRecord.model_validate_json(data)
        except ValidationError as exc:
            where = self._path(name)
            raise DamagedImage(f"{where}: not a valid commit record: {_first(exc)}") from None
        if record.id != image_id:
            raise DamagedImage(
                f"{self._path(name)}: records image id {record.id!r}, not its directory "
                f"{image_id!r}"
            )
        if record.box_ip != box_ip:
            raise DamagedImage(
                f"{self._path(name)}: records box {record.box_ip}, not its box {box_ip}"
            )
        return record

    def box_ips(self, problems: list[str] | None = None) -> list[str]:
        """Boxes that have a directory in the store (sorted); a linked one is reported."""
        ips = []
        for item in self.backend.list(""):
            if not layout.is_box_ip(item.name):
                continue
            if item.kind == "dir":
                ips.append(item.name)
            else:
                _note(problems, f"{item.name}: {self._path(item.name)} {_KIND_WORDS[item.kind]}")
        return ips

    def _scan_images(
        self,
        box_ip: str,
        problems: list[str] | None = None,
        top: Item | None = None,
        check_commit: bool = True,
    ) -> tuple[list[str], list[PendingImage]]:
        """(committed ids, pending images) of a box; one stat per image directory.

        `top`: the `images` entry when the caller has listed the box already; with
        check_commit=False every image directory counts as committed (the caller reads the
        commit records anyway and treats a missing one as pending).
        """
        prefix = layout.images_dir(box_ip)
        committed: list[str] = []
        pending: list[PendingImage] = []
        top = top if top is not None else self.backend.stat(prefix)
        if top is None:
            return committed, pending
        if top.kind != "dir":
            _note(problems, f"{box_ip}: {self._path(prefix)} {_KIND_WORDS[top.kind]}")
            return committed, pending
        # Without check_commit (scan) no mtime is used (the pending images it returns are
        # dropped), so the listing needs only the kinds: no lstat per image directory.
        for item in self.backend.list(prefix, stat=check_commit):
            if item.name.startswith(DELETING) and item.kind == "dir":
                pending.append(PendingImage(box_ip, item.name, item.mtime))
                continue
            if item.name.startswith("."):
                continue
            if not layout.IMAGE_DIR_NAME.fullmatch(item.name):
                path = f"{self._path(prefix)}/{item.name}"
                _note(problems, f"{box_ip}: {path}: not an image id; ignored")
                continue
            if item.kind != "dir":
                path = f"{self._path(prefix)}/{item.name}"
                _note(problems, f"{box_ip}: {path} {_KIND_WORDS[item.kind]}; ignored")
                continue
            if check_commit and self.backend.stat(layout.commit(box_ip, item.name)) is None:
                pending.append(PendingImage(box_ip, item.name, item.mtime))
            else:
                committed.append(item.name)
        return committed, pending

    def committed_ids(self, box_ip: str) -> list[str]:
        """Ids of the box's images that have a commit record (which may still be damaged)."""
        return self._scan_images(box_ip)[0]

    def pending_images(self, problems: list[str] | None = None) -> list[PendingImage]:
        pending = []
        for ip in self.box_ips(problems):
            try:
                pending.extend(self._scan_images(ip, problems)[1])
            except StoreError as exc:
                _note(problems, f"{ip}: {exc.message}")
        return pending

    def delete_image(self, box_ip: str, image_id: str) -> None:
        """Make the image disappear at once (one rename to a hidden name), then its files."""
        directory = layout.image_dir(box_ip, image_id)
        if self.backend.stat(layout.commit(box_ip, image_id)) is None:
            raise ImageNotFound(f"box {box_ip} has no image {image_id!r}")
        doomed = f"{layout.images_dir(box_ip)}/{DELETING}{image_id}-{secrets.token_hex(3)}"
        try:
            if not self.backend.move(directory, doomed):
                raise StoreError(f"{self._path(doomed)}: already exists")
        except StoreMissing:
            raise ImageNotFound(f"box {box_ip} has no image {image_id!r}") from None
        self.backend.delete_tree(doomed)

    def remove_pending(self, box_ip: str, image_id: str) -> bool:
        """Remove an uncommitted image directory (or a killed deletion's leftover); False, and
        nothing removed, if it is committed."""
        if image_id.startswith(DELETING) and layout.TOKEN.fullmatch(image_id[1:]):
            return self.backend.delete_tree(f"{layout.images_dir(box_ip)}/{image_id}")
        if self.backend.stat(layout.commit(box_ip, image_id)) is not None:
            return False
        self.backend.delete_tree(layout.image_dir(box_ip, image_id))
        return True

    # --- legacy images (the seed's gz files) -----------------------------------------------
    def _legacy_from(
        self, box_ip: str, items: list[Item], problems: list[str] | None
    ) -> list[LegacyFile]:
        from onbox.store.legacy import legacy_disk

        files = []
        for item in items:
            disk = legacy_disk(item.name)
            if disk is None:
                continue
            if item.kind != "file":
                path = self._path(f"{box_ip}/{item.name}")
                _note(problems, f"{box_ip}: {path} {_KIND_WORDS[item.kind]}; not an image")
                continue
            files.append(LegacyFile(disk, item.name, item.size, item.mtime))
        return files

    def legacy_files(self, box_ip: str, problems: list[str] | None = None) -> list[LegacyFile]:
        return self._legacy_from(box_ip, self.backend.list(layout.box(box_ip)), problems)

    def open_legacy(self, box_ip: str, name: str) -> BinaryIO:
        """A stream of a legacy gz (a regular file, never a link); the caller closes it."""
        try:
            return self.backend.open(layout.legacy_name(box_ip, name))
        except StoreMissing:
            raise ImageNotFound(f"legacy image {box_ip}/{name} does not exist") from None

    def retire_legacy(self, box_ip: str, name: str) -> str:
        """After import: rename `<disk>.gz` to `<disk>.gz.imported` (kept, no longer listed)."""
        source = layout.legacy_name(box_ip, name)
        target = layout.legacy_name(box_ip, f"{name}.imported")
        try:
            self.backend.move(source, target, replace=True)
        except StoreMissing:
            raise ImageNotFound(f"legacy image {self._path(source)} does not exist") from None
        return f"{name}.imported"

    def legacy_info(self, box_ip: str) -> ImageInfo | None:
        from onbox.store.legacy import legacy_image_info

        return legacy_image_info(box_ip, self.legacy_files(box_ip))

    # --- listing: commit records only, never manifests ---------------------------------------
    def scan(
        self, box_ip: str | None = None, *, names: Collection[str] | None = None
    ) -> StoreListing:
        """Usable images (oldest first) and one line per damaged or foreign entry.

        Reads one directory per box, one stat and one commit record per image: the controller
        calls this for every box. `names` (with `box_ip`): the entries of the box directory
        when the caller has just listed it (observe has), or just its `images` and legacy
        image names: the directory is not listed again, only `images` and legacy image names
        among them are looked at (one lstat each).
        """
        listing = StoreListing()
        problems = listing.problems
        boxes = [layout.box(box_ip)] if box_ip is not None else self.box_ips(problems)
        from onbox.store.legacy import legacy_image_info

        for ip in boxes:
            # The box directory, then its images directory, are opened once each (pinned)
            # and every listing and commit record below is read from there, not walked to
            # from the share root name by name.
            with self.backend.pinned(ip):
                try:
                    items = self._box_items(ip, names if box_ip is not None else None)
                except StoreError as exc:
                    problems.append(f"{ip}: {exc.message}")
                    continue
                top = next((i for i in items if i.name == IMAGES_DIR), None)
                if top is not None:
                    with self.backend.pinned(layout.images_dir(ip)):
                        self._scan_commits(listing, ip, top)
                legacy = legacy_image_info(ip, self._legacy_from(ip, items, problems))
                if legacy is not None:
                    listing.images.append(legacy)
        listing.images.sort(key=lambda i: (i.created, i.box_ip, i.id))
        return listing

    def _box_items(self, ip: str, names: Collection[str] | None) -> list[Item]:
        if names is None:
            return self.backend.list(ip)
        from onbox.store.legacy import legacy_disk

        wanted = sorted(n for n in names if n == IMAGES_DIR or legacy_disk(n) is not None)
        found = (self.backend.stat(f"{ip}/{n}") for n in wanted)
        return [item for item in found if item is not None]  # gone since: as if listed later

    def _scan_commits(self, listing: StoreListing, ip: str, top: Item) -> None:
        problems = listing.problems
        try:
            committed, _ = self._scan_images(ip, problems, top, check_commit=False)
        except StoreError as exc:
            problems.append(f"{ip}: {exc.message}")
            committed = []
        for iid in committed:
            try:
                listing.images.append(self.read_commit(ip, iid).info())
            except ImageNotFound:
                continue  # no commit record (a backup running or interrupted)
            except StoreError as exc:
                problems.append(f"{ip}: {exc.message}")
                listing.damaged.append((ip, iid, exc.message))

    def list_images(self, box_ip: str | None = None) -> list[ImageInfo]:
        """Usable images (and legacy images), oldest first; damaged ones are left out (see
        `scan` for why each was)."""
        return self.scan(box_ip).images

    def read_manifest(self, box_ip: str, image_id: str, disk: str) -> DiskManifest:
        """A disk's manifest, checked against its commit record (hash, size, chunk count)."""
        record = self.read_commit(box_ip, image_id)
        entry = next((d for d in record.disks if d.disk == disk), None)
        if entry is None:
            raise ImageNotFound(f"image {box_ip}/{image_id} has no disk {disk}")
        data = self.read_manifest_bytes(box_ip, image_id, disk)
        where = self._path(layout.manifest(box_ip, image_id, disk))
        if hashlib.sha256(data).hexdigest() != entry.manifest_sha256:
            raise DamagedImage(
                f"image {box_ip}/{image_id}: manifest of {disk} does not match its commit record"
                f" ({where})"
            )
        try:
            manifest = DiskManifest.model_validate_json(data)
        except ValidationError as exc:
            raise DamagedImage(f"{where}: not a valid manifest: {_first(exc)}") from None
        problem = manifest.disagreement(entry)
        if problem is not None:
            raise DamagedImage(f"{where}: {problem}")
        return manifest

    def manifests(self, box_ip: str, image_id: str) -> list[DiskManifest]:
        record = self.read_commit(box_ip, image_id)
        if not record.disks:
            raise DamagedImage(f"image {box_ip}/{image_id}: its commit record names no disk")
        return [self.read_manifest(box_ip, image_id, d.disk) for d in record.disks]

    def image_chunk_ids(
        self, box_ip: str, image_id: str, problems: list[str] | None = None
    ) -> set[str] | None:
        """Chunks an image references; None when it was deleted while we read it.

        Without `problems`, a committed image whose records are damaged raises. With it (gc),
        the damage is reported and every chunk any manifest file of that image names still
        counts as referenced: an operator may repair the record, and gc must not guess.
        """
        try:
            return set().union(*(m.stored_ids() for m in self.manifests(box_ip, image_id)))
        except ImageNotFound:
            if image_id not in self.committed_ids(box_ip):
                return None
            raise
        except StoreError as exc:
            if problems is None:
                raise
            problems.append(f"{box_ip}: {exc.message}")
        refs: set[str] = set()
        try:
            items = self.backend.list(layout.image_dir(box_ip, image_id))
        except StoreError:
            return refs
        for item in items:
            if item.kind == "file" and item.name.endswith(layout.MANIFEST_SUFFIX):
                disk = item.name[: -len(layout.MANIFEST_SUFFIX)]
                try:
                    data = self.backend.load(
                        layout.manifest(box_ip, image_id, disk), MANIFEST_LIMIT
                    )
                    refs |= DiskManifest.model_validate_json(data).stored_ids()
                except (StoreError, ValidationError):
                    continue
        return refs

    def referenced_chunks(self, problems: list[str] | None = None) -> set[str]:
        """Every chunk id some committed image references (reads every manifest)."""
        referenced: set[str] = set()
        for ip in self.box_ips(problems):
            for iid in self._scan_images(ip, problems)[0]:
                referenced |= self.image_chunk_ids(ip, iid, problems) or set()
        return referenced

    def resolve(self, box_ip: str, ref: str) -> ImageInfo:
        """An image of `box_ip` by id, "latest" (newest usable, legacy included) or "legacy".

        A damaged image is not listed, so "latest" never names one; an id naming a damaged
        image is an error that says why.
        """
        listing = self.scan(box_ip)
        images = listing.images
        if ref != "latest":
            for image in images:
                if image.id == ref:
                    return image
            if ref != LEGACY_ID and layout.IMAGE_DIR_NAME.fullmatch(ref):
                try:
                    self.read_commit(box_ip, ref)
                except DamagedImage:
                    raise
                except StoreError:
                    pass
        if not images:
            if listing.damaged:
                why = listing.damaged[0][2]
                raise ImageNotFound(f"box {box_ip} has no images that are not damaged ({why})")
            raise ImageNotFound(f"box {box_ip} has no images")
        if ref == "latest":
            return images[-1]
        known = ", ".join(i.id for i in images)
        raise ImageNotFound(f"box {box_ip} has no image {ref!r} (images: {known})")


def _note(problems: list[str] | None, line: str) -> None:
    if problems is not None:
        problems.append(line)


def _first(exc: ValidationError) -> str:
    """pydantic's first error as one line: `field.path: message`."""
    errors = exc.errors()
    if not errors:
        return "invalid"
    first = errors[0]
    loc = ".".join(str(p) for p in first.get("loc", ())) or "record"
    return f"{loc}: {first.get('msg', 'invalid')}"


def _is_chunk_id_bytes(word: bytes) -> bool:
    return len(word) == 64 and all(c in b"0123456789abcdef" for c in word)
