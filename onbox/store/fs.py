"""The image store on the backup share (SPEC §2, §4).

    store/chunks/<first two hex>/<sha256>.zst   compressed chunk, named by its uncompressed hash
    store/leases/<lease-id>.lease               chunk ids a running backup (will) reference
    store/trash/<gc-id>/<sha256>.zst            chunks a running gc has taken out (reversible)
    <ip>/images/<image-id>/<disk>.manifest.json one per disk
    <ip>/images/<image-id>/commit.json          written last; its presence makes the image

Durability: a chunk file is fsynced before it is renamed into place, so a chunk name never
exists with incomplete bytes (dedup trusts names). Directory entries of new chunks are fsynced
once per fan-out directory before a commit record is written, not once per chunk.
"""

import contextlib
import hashlib
import ipaddress
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from onbox.atomic import atomic_write_bytes, fsync_dir, remove_durably
from onbox.errors import ImageNotFound, IntegrityError, StoreError
from onbox.store.base import ChunkStat, ImageStore, Lease, LegacyFile, PendingImage
from onbox.store.legacy import legacy_disk, legacy_image_info
from onbox.store.records import (
    COMMIT_FILE,
    MANIFEST_SUFFIX,
    CommitRecord,
    DiskManifest,
    is_chunk_id,
)
from schema.image import ImageInfo
from schema.layout import IMAGES_DIR, STORE_DIR

CHUNK_SUFFIX = ".zst"
TEMP_SUFFIX = ".tmp"
SYNC_THREADS = 4  # fsyncs wait on the disk, not the CPU: a few in parallel keep it busy
IMAGE_DIR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # schema.types.ImageId


def _is_box_dir_name(name: str) -> bool:
    try:
        return str(ipaddress.IPv4Address(name)) == name
    except ValueError:
        return False


class _FileLease(Lease):
    """Append-only file, one chunk id per line; each append is fdatasynced before returning."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.fsync(self._fd)
        fsync_dir(path.parent)

    def add(self, chunk_id: str) -> None:
        with self._lock:
            if self._fd is None:
                raise StoreError(f"lease {self._path} already released")
            os.write(self._fd, f"{chunk_id}\n".encode())
            os.fdatasync(self._fd)

    def release(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
                remove_durably(self._path)


class FilesystemStore(ImageStore):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.store_dir = self.root / STORE_DIR
        self.chunk_dir = self.store_dir / "chunks"
        self.lease_dir = self.store_dir / "leases"
        self.trash_dir = self.store_dir / "trash"
        self._dirty: set[Path] = set()
        self._dirty_lock = threading.Lock()
        self._pending: list[Future[None]] = []
        self._inflight: dict[str, tuple[Future[None], int]] = {}
        self._sync_pool: ThreadPoolExecutor | None = None

    # --- paths ----------------------------------------------------------------------------
    def _chunk_path(self, chunk_id: str) -> Path:
        if not is_chunk_id(chunk_id):
            raise StoreError(f"not a chunk id: {chunk_id!r}")
        return self.chunk_dir / chunk_id[:2] / f"{chunk_id}{CHUNK_SUFFIX}"

    def _box_dir(self, box_ip: str) -> Path:
        # Names become paths: only a canonical IPv4 address can name a box directory.
        if not _is_box_dir_name(box_ip):
            raise StoreError(f"not a box IP address: {box_ip!r}")
        return self.root / box_ip

    def _image_dir(self, box_ip: str, image_id: str) -> Path:
        if not IMAGE_DIR_NAME.match(image_id):
            raise ImageNotFound(f"box {box_ip} has no image {image_id!r}")
        return self._box_dir(box_ip) / IMAGES_DIR / image_id

    # --- chunks ---------------------------------------------------------------------------
    def put_chunk(self, chunk_id: str, blob: bytes) -> bool:
        """Write the blob to a temp file now; fsync + rename it on a sync thread.

        The name appears only once the bytes are durable (dedup trusts names), and the
        compressing workers never wait for the disk. `flush()` (called by `commit`) waits for
        every pending rename, so no commit record names a chunk that is not durably stored.
        """
        path = self._chunk_path(chunk_id)
        with self._dirty_lock:
            if chunk_id in self._inflight:
                return False
        if path.exists():
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=TEMP_SUFFIX, dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
                os.fchmod(f.fileno(), 0o644)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        syncer = self._syncer()
        with self._dirty_lock:
            if chunk_id in self._inflight:  # another thread got here first
                os.unlink(tmp)
                return False
            future = syncer.submit(self._make_durable, Path(tmp), path, chunk_id)
            self._inflight[chunk_id] = (future, len(blob))
            self._pending.append(future)
        return True

    def _syncer(self) -> ThreadPoolExecutor:
        with self._dirty_lock:
            if self._sync_pool is None:
                self._sync_pool = ThreadPoolExecutor(SYNC_THREADS, thread_name_prefix="chunk-sync")
            return self._sync_pool

    def _make_durable(self, tmp: Path, path: Path, chunk_id: str) -> None:
        try:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        finally:
            with self._dirty_lock:
                self._inflight.pop(chunk_id, None)
        with self._dirty_lock:
            self._dirty.add(path.parent)

    def _wait_inflight(self, chunk_id: str) -> int | None:
        """Size of a chunk this process is still making durable (after waiting for it)."""
        with self._dirty_lock:
            entry = self._inflight.get(chunk_id)
        if entry is None:
            return None
        entry[0].result()
        return entry[1]

    def has_chunk(self, chunk_id: str) -> bool:
        return self.stat_chunk(chunk_id) is not None

    def stat_chunk(self, chunk_id: str) -> int | None:
        with self._dirty_lock:
            entry = self._inflight.get(chunk_id)
        if entry is not None:
            return entry[1]  # written by this process, rename pending: as good as stored
        try:
            return self._chunk_path(chunk_id).stat().st_size
        except FileNotFoundError:
            return None

    def get_chunk(self, chunk_id: str) -> bytes:
        self._wait_inflight(chunk_id)
        try:
            return self._chunk_path(chunk_id).read_bytes()
        except FileNotFoundError:
            raise IntegrityError(f"chunk {chunk_id} is missing from the store") from None

    def chunk_stats(self) -> Iterator[ChunkStat]:
        with self._dirty_lock:
            pending = list(self._pending)
        for future in pending:  # this process's own writes are listed once they are in place
            future.exception()
        try:
            fanout = sorted(os.scandir(self.chunk_dir), key=lambda e: e.name)
        except FileNotFoundError:
            return
        for sub in fanout:
            if not sub.is_dir():
                continue
            for entry in os.scandir(sub.path):
                name = entry.name
                if name.endswith(CHUNK_SUFFIX) and is_chunk_id(name[: -len(CHUNK_SUFFIX)]):
                    with contextlib.suppress(FileNotFoundError):
                        st = entry.stat()
                        yield ChunkStat(name[: -len(CHUNK_SUFFIX)], st.st_size, st.st_mtime)

    def flush(self) -> None:
        """Make every chunk written so far durable, names included (once per directory)."""
        with self._dirty_lock:
            pending, self._pending = self._pending, []
        errors = [exc for exc in (f.exception() for f in pending) if exc is not None]
        if errors:
            raise StoreError(f"storing a chunk failed: {errors[0]}") from errors[0]
        with self._dirty_lock:
            dirty, self._dirty = self._dirty, set()
        for directory in sorted(dirty):
            fsync_dir(directory)

    def remove_stale_temps(self, older_than: float) -> int:
        """Temp files of chunk writes killed before their rename, older than `older_than` s."""
        removed = 0
        now = time.time()
        try:
            fanout = list(os.scandir(self.chunk_dir))
        except FileNotFoundError:
            return 0
        for sub in fanout:
            if not sub.is_dir():
                continue
            for entry in os.scandir(sub.path):
                if entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX):
                    with contextlib.suppress(FileNotFoundError):
                        if now - entry.stat().st_mtime > older_than:
                            os.unlink(entry.path)
                            removed += 1
        return removed

    # --- trash ----------------------------------------------------------------------------
    def _trash_path(self, gc_id: str, chunk_id: str) -> Path:
        return self.trash_dir / gc_id / f"{chunk_id}{CHUNK_SUFFIX}"

    def trash_chunk(self, gc_id: str, chunk_id: str) -> bool:
        self._wait_inflight(chunk_id)
        target = self._trash_path(gc_id, chunk_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(self._chunk_path(chunk_id), target)
        except FileNotFoundError:
            return False
        return True

    def untrash_chunk(self, gc_id: str, chunk_id: str) -> None:
        source = self._trash_path(gc_id, chunk_id)
        path = self._chunk_path(chunk_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        # link() fails if a backup stored the chunk again meanwhile: its copy is as good.
        with contextlib.suppress(FileExistsError):
            os.link(source, path)
        os.unlink(source)
        fsync_dir(path.parent)

    def empty_trash(self, gc_id: str) -> int:
        directory = self.trash_dir / gc_id
        freed = 0
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(directory):
                freed += entry.stat().st_size
        shutil.rmtree(directory, ignore_errors=True)
        return freed

    # --- leases ---------------------------------------------------------------------------
    def open_lease(self, lease_id: str) -> Lease:
        self.lease_dir.mkdir(parents=True, exist_ok=True)
        return _FileLease(self.lease_dir / f"{lease_id}.lease")

    def _lease_files(self, stale_after: float) -> Iterator[tuple[Path, bool]]:
        now = time.time()
        try:
            entries = list(os.scandir(self.lease_dir))
        except FileNotFoundError:
            return
        for entry in entries:
            if entry.name.endswith(".lease"):
                with contextlib.suppress(FileNotFoundError):
                    yield Path(entry.path), now - entry.stat().st_mtime > stale_after

    def leased_chunks(self, stale_after: float) -> set[str]:
        leased: set[str] = set()
        for path, stale in self._lease_files(stale_after):
            if stale:
                continue
            with contextlib.suppress(FileNotFoundError):
                leased.update(line for line in path.read_text().split() if is_chunk_id(line))
        return leased

    def live_leases(self, stale_after: float) -> set[str]:
        return {path.stem for path, stale in self._lease_files(stale_after) if not stale}

    def remove_stale_leases(self, stale_after: float) -> list[str]:
        removed = []
        for path, stale in list(self._lease_files(stale_after)):
            if stale and remove_durably(path):
                removed.append(path.stem)
        return removed

    # --- images ---------------------------------------------------------------------------
    def write_manifest(self, box_ip: str, image_id: str, manifest: DiskManifest) -> str:
        directory = self._image_dir(box_ip, image_id)
        directory.mkdir(parents=True, exist_ok=True)
        data = manifest.model_dump_json().encode()
        atomic_write_bytes(directory / f"{manifest.disk}{MANIFEST_SUFFIX}", data)
        return hashlib.sha256(data).hexdigest()

    def read_manifest_bytes(self, box_ip: str, image_id: str, disk: str) -> bytes:
        path = self._image_dir(box_ip, image_id) / f"{disk}{MANIFEST_SUFFIX}"
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise IntegrityError(f"image {box_ip}/{image_id}: manifest {path} is missing") from None

    def commit(self, record: CommitRecord) -> None:
        self.flush()
        directory = self._image_dir(record.box_ip, record.id)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(directory / COMMIT_FILE, record.model_dump_json(indent=1).encode())

    def read_commit(self, box_ip: str, image_id: str) -> CommitRecord:
        path = self._image_dir(box_ip, image_id) / COMMIT_FILE
        try:
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            raise ImageNotFound(f"box {box_ip} has no image {image_id!r}") from None
        try:
            return CommitRecord.model_validate_json(data)
        except ValueError as exc:
            first = str(exc).splitlines()[0]
            raise StoreError(f"{path}: not a valid commit record: {first}") from None

    def box_ips(self) -> list[str]:
        try:
            return sorted(
                e.name for e in os.scandir(self.root) if _is_box_dir_name(e.name) and e.is_dir()
            )
        except FileNotFoundError:
            raise StoreError(f"backup share {self.root} does not exist") from None

    def _scan_images(self, box_ip: str) -> tuple[list[str], list[str]]:
        """(committed ids, pending ids) of a box; one listdir per image directory."""
        committed: list[str] = []
        pending: list[str] = []
        try:
            entries = list(os.scandir(self._box_dir(box_ip) / IMAGES_DIR))
        except (FileNotFoundError, NotADirectoryError):
            return committed, pending
        for entry in entries:
            if entry.name.startswith("."):
                continue
            has_commit = os.path.exists(os.path.join(entry.path, COMMIT_FILE))
            (committed if has_commit else pending).append(entry.name)
        return sorted(committed), sorted(pending)

    def committed_ids(self, box_ip: str) -> list[str]:
        return self._scan_images(box_ip)[0]

    def pending_images(self) -> list[PendingImage]:
        pending = []
        for ip in self.box_ips():
            for iid in self._scan_images(ip)[1]:
                with contextlib.suppress(FileNotFoundError):
                    mtime = self._image_dir(ip, iid).stat().st_mtime
                    pending.append(PendingImage(ip, iid, mtime))
        return pending

    def delete_image(self, box_ip: str, image_id: str) -> None:
        # One rename makes the whole image disappear at once (hidden names are not images and
        # not pending backups); then the files go.
        directory = self._image_dir(box_ip, image_id)
        if not (directory / COMMIT_FILE).exists():
            raise ImageNotFound(f"box {box_ip} has no image {image_id!r}")
        doomed = directory.with_name(f".deleting-{image_id}-{secrets.token_hex(3)}")
        try:
            os.rename(directory, doomed)
        except FileNotFoundError:
            raise ImageNotFound(f"box {box_ip} has no image {image_id!r}") from None
        fsync_dir(directory.parent)
        shutil.rmtree(doomed, ignore_errors=True)

    def remove_pending(self, box_ip: str, image_id: str) -> bool:
        directory = self._image_dir(box_ip, image_id)
        if (directory / COMMIT_FILE).exists():
            return False
        shutil.rmtree(directory, ignore_errors=True)
        return True

    # --- legacy ---------------------------------------------------------------------------
    def _box_entries(self, box_ip: str) -> list[os.DirEntry[str]]:
        try:
            return list(os.scandir(self._box_dir(box_ip)))
        except (FileNotFoundError, NotADirectoryError):
            return []

    @staticmethod
    def _legacy_from(entries: list[os.DirEntry[str]]) -> list[LegacyFile]:
        files = []
        for entry in entries:
            disk = legacy_disk(entry.name)
            if disk is not None and entry.is_file():
                st = entry.stat()
                files.append(LegacyFile(disk, entry.name, st.st_size, st.st_mtime))
        return files

    def legacy_files(self, box_ip: str) -> list[LegacyFile]:
        return self._legacy_from(self._box_entries(box_ip))

    def open_legacy(self, box_ip: str, name: str) -> BinaryIO:
        if legacy_disk(name) is None:
            raise StoreError(f"not a legacy image name: {name!r}")
        try:
            return open(self._box_dir(box_ip) / name, "rb")  # the caller closes it
        except FileNotFoundError:
            raise ImageNotFound(f"legacy image {box_ip}/{name} does not exist") from None

    def retire_legacy(self, box_ip: str, name: str) -> str:
        if legacy_disk(name) is None:
            raise StoreError(f"not a legacy image name: {name!r}")
        source = self._box_dir(box_ip) / name
        target = source.with_name(f"{name}.imported")
        try:
            os.rename(source, target)
        except FileNotFoundError:
            raise ImageNotFound(f"legacy image {source} does not exist") from None
        fsync_dir(source.parent)
        return target.name

    # --- listing, cheap: one scandir per box, commit records only ---------------------------
    def list_images(self, box_ip: str | None = None) -> list[ImageInfo]:
        boxes = [box_ip] if box_ip is not None else self.box_ips()
        images: list[ImageInfo] = []
        for ip in boxes:
            entries = self._box_entries(ip)
            if any(e.name == IMAGES_DIR for e in entries):
                images.extend(self.read_commit(ip, iid).info() for iid in self.committed_ids(ip))
            legacy = legacy_image_info(ip, self._legacy_from(entries))
            if legacy is not None:
                images.append(legacy)
        images.sort(key=lambda i: (i.created, i.box_ip, i.id))
        return images
