"""An image store in memory, for tests: same contract as the filesystem store, no I/O.

Thread-safe (one lock), because the engine calls the store from worker threads. `add_legacy`
stands in for a seed gz file in a box directory; `clock` lets tests age chunks and leases.
"""

import hashlib
import io
import threading
import time
from collections.abc import Callable, Iterator
from typing import BinaryIO

from onbox.errors import ImageNotFound, IntegrityError, StoreError
from onbox.store.base import ChunkStat, ImageStore, Lease, LegacyFile, PendingImage
from onbox.store.legacy import legacy_disk
from onbox.store.records import CommitRecord, DiskManifest, is_chunk_id


class _MemoryLease(Lease):
    def __init__(self, store: "MemoryStore", lease_id: str) -> None:
        self._store = store
        self._id = lease_id

    def add(self, chunk_id: str) -> None:
        with self._store.lock:
            ids, _ = self._store.leases[self._id]
            ids.add(chunk_id)
            self._store.leases[self._id] = (ids, self._store.clock())

    def release(self) -> None:
        with self._store.lock:
            self._store.leases.pop(self._id, None)


class MemoryStore(ImageStore):
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.chunks: dict[str, tuple[bytes, float]] = {}
        self.trash: dict[str, dict[str, tuple[bytes, float]]] = {}
        self.leases: dict[str, tuple[set[str], float]] = {}
        # (box_ip, image_id) -> {"<disk>": manifest bytes, ...}; commits kept apart.
        self.manifest_bytes: dict[tuple[str, str], dict[str, bytes]] = {}
        self.commits: dict[tuple[str, str], bytes] = {}
        self.dir_mtimes: dict[tuple[str, str], float] = {}
        self.legacy: dict[tuple[str, str], tuple[bytes, float]] = {}

    # --- chunks ---------------------------------------------------------------------------
    def put_chunk(self, chunk_id: str, blob: bytes) -> bool:
        if not is_chunk_id(chunk_id):
            raise StoreError(f"not a chunk id: {chunk_id!r}")
        with self.lock:
            if chunk_id in self.chunks:
                return False
            self.chunks[chunk_id] = (bytes(blob), self.clock())
            return True

    def has_chunk(self, chunk_id: str) -> bool:
        with self.lock:
            return chunk_id in self.chunks

    def stat_chunk(self, chunk_id: str) -> int | None:
        with self.lock:
            entry = self.chunks.get(chunk_id)
        return None if entry is None else len(entry[0])

    def get_chunk(self, chunk_id: str) -> bytes:
        with self.lock:
            try:
                return self.chunks[chunk_id][0]
            except KeyError:
                raise IntegrityError(f"chunk {chunk_id} is missing from the store") from None

    def chunk_stats(self) -> Iterator[ChunkStat]:
        with self.lock:
            stats = [ChunkStat(cid, len(b), m) for cid, (b, m) in self.chunks.items()]
        return iter(stats)

    # --- trash ----------------------------------------------------------------------------
    def trash_chunk(self, gc_id: str, chunk_id: str) -> bool:
        with self.lock:
            entry = self.chunks.pop(chunk_id, None)
            if entry is None:
                return False
            self.trash.setdefault(gc_id, {})[chunk_id] = entry
            return True

    def untrash_chunk(self, gc_id: str, chunk_id: str) -> None:
        with self.lock:
            entry = self.trash.get(gc_id, {}).pop(chunk_id)
            self.chunks.setdefault(chunk_id, entry)

    def empty_trash(self, gc_id: str) -> int:
        with self.lock:
            return sum(len(b) for b, _ in self.trash.pop(gc_id, {}).values())

    # --- leases ---------------------------------------------------------------------------
    def open_lease(self, lease_id: str) -> Lease:
        with self.lock:
            self.leases[lease_id] = (set(), self.clock())
        return _MemoryLease(self, lease_id)

    def leased_chunks(self, stale_after: float) -> set[str]:
        now = self.clock()
        with self.lock:
            live = [ids for ids, touched in self.leases.values() if now - touched <= stale_after]
            return set().union(*live) if live else set()

    def live_leases(self, stale_after: float) -> set[str]:
        now = self.clock()
        with self.lock:
            return {k for k, (_, t) in self.leases.items() if now - t <= stale_after}

    def remove_stale_leases(self, stale_after: float) -> list[str]:
        now = self.clock()
        with self.lock:
            stale = [k for k, (_, t) in self.leases.items() if now - t > stale_after]
            for k in stale:
                del self.leases[k]
            return stale

    # --- images ---------------------------------------------------------------------------
    def write_manifest(self, box_ip: str, image_id: str, manifest: DiskManifest) -> str:
        data = manifest.model_dump_json().encode()
        with self.lock:
            self.manifest_bytes.setdefault((box_ip, image_id), {})[manifest.disk] = data
            self.dir_mtimes.setdefault((box_ip, image_id), self.clock())
        return hashlib.sha256(data).hexdigest()

    def read_manifest_bytes(self, box_ip: str, image_id: str, disk: str) -> bytes:
        with self.lock:
            try:
                return self.manifest_bytes[(box_ip, image_id)][disk]
            except KeyError:
                raise IntegrityError(
                    f"image {box_ip}/{image_id}: manifest of {disk} is missing"
                ) from None

    def commit(self, record: CommitRecord) -> None:
        with self.lock:
            self.dir_mtimes.setdefault((record.box_ip, record.id), self.clock())
            self.commits[(record.box_ip, record.id)] = record.model_dump_json().encode()

    def read_commit(self, box_ip: str, image_id: str) -> CommitRecord:
        with self.lock:
            data = self.commits.get((box_ip, image_id))
        if data is None:
            raise ImageNotFound(f"box {box_ip} has no image {image_id!r}")
        return CommitRecord.model_validate_json(data)

    def box_ips(self) -> list[str]:
        with self.lock:
            ips = {ip for ip, _ in self.dir_mtimes} | {ip for ip, _ in self.legacy}
        return sorted(ips)

    def committed_ids(self, box_ip: str) -> list[str]:
        with self.lock:
            return sorted(iid for ip, iid in self.commits if ip == box_ip)

    def pending_images(self) -> list[PendingImage]:
        with self.lock:
            return [
                PendingImage(ip, iid, m)
                for (ip, iid), m in sorted(self.dir_mtimes.items())
                if (ip, iid) not in self.commits
            ]

    def delete_image(self, box_ip: str, image_id: str) -> None:
        with self.lock:
            if self.commits.pop((box_ip, image_id), None) is None:
                raise ImageNotFound(f"box {box_ip} has no image {image_id!r}")
            self.manifest_bytes.pop((box_ip, image_id), None)
            self.dir_mtimes.pop((box_ip, image_id), None)

    def remove_pending(self, box_ip: str, image_id: str) -> bool:
        with self.lock:
            if (box_ip, image_id) in self.commits:
                return False
            self.manifest_bytes.pop((box_ip, image_id), None)
            self.dir_mtimes.pop((box_ip, image_id), None)
            return True

    # --- legacy ---------------------------------------------------------------------------
    def add_legacy(self, box_ip: str, name: str, gz: bytes, mtime: float | None = None) -> None:
        if legacy_disk(name) is None:
            raise StoreError(f"not a legacy image name: {name!r}")
        with self.lock:
            self.legacy[(box_ip, name)] = (gz, self.clock() if mtime is None else mtime)

    def legacy_files(self, box_ip: str) -> list[LegacyFile]:
        with self.lock:
            items = [(n, g, m) for (ip, n), (g, m) in self.legacy.items() if ip == box_ip]
        return [LegacyFile(legacy_disk(n) or "", n, len(g), m) for n, g, m in sorted(items)]

    def open_legacy(self, box_ip: str, name: str) -> BinaryIO:
        with self.lock:
            entry = self.legacy.get((box_ip, name))
        if entry is None:
            raise ImageNotFound(f"legacy image {box_ip}/{name} does not exist")
        return io.BytesIO(entry[0])

    def retire_legacy(self, box_ip: str, name: str) -> str:
        with self.lock:
            if self.legacy.pop((box_ip, name), None) is None:
                raise ImageNotFound(f"legacy image {box_ip}/{name} does not exist")
        return f"{name}.imported"
