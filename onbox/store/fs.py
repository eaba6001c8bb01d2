"""The filesystem backend: store names are paths on the backup share, reached through shareio.

Every access goes through `onbox.shareio.Share` (openat + O_NOFOLLOW from the share's root,
regular files only, bounded reads), so a symbolic link or FIFO planted anywhere in the store
(`<box>/images`, a box directory, `store/chunks/<xx>`, `store/leases`, `store/trash/...`) is
never followed, opened or deleted through: it is a `StoreError` naming the path.

Durability of chunks (`store(durable=False)`): the bytes go to a temp file in the target's
directory at once; a few "chunk-sync" threads fsync it and rename it into place, so a chunk's
name never exists with incomplete bytes, and the compressing workers never wait for the disk.
While a name is in flight, `stat` answers from memory and `load` waits for it. `flush()` waits
for every pending rename and fsyncs each touched directory once (not once per chunk).
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from onbox.errors import StoreError
from onbox.shareio import TEMP_SUFFIX, Share, ShareAccessError, ShareMissing, kind_of
from onbox.store.backend import Backend, Item
from onbox.store.base import ImageStore
from onbox.store.layout import CHUNK_SUFFIX

__all__ = ["CHUNK_SUFFIX", "TEMP_SUFFIX", "FilesystemStore", "FsBackend"]

SYNC_THREADS = 4  # fsyncs wait on the disk, not the CPU: a few in parallel keep it busy
MAX_INFLIGHT = 64  # deferred writes waiting for their fsync (back-pressure on a slow share)


class FsBackend(Backend):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.where = str(self.root)
        self._share: Share | None = None
        self._lock = threading.Lock()
        self._inflight: dict[str, tuple[Future[None], int]] = {}
        self._pending: list[Future[None]] = []
        self._dirty: set[str] = set()
        self._slots = threading.BoundedSemaphore(MAX_INFLIGHT)
        self._pool: ThreadPoolExecutor | None = None
        self._pins = threading.local()  # .stack: [(prefix, Share)] of this thread's pins

    def share(self, create: bool = False) -> Share:
        """The share's root, opened once (the mount point is the operator's, trusted)."""
        with self._lock:
            if self._share is None:
                if create:
                    self.root.mkdir(parents=True, exist_ok=True)
                # A missing share is an empty store (ShareMissing: nothing there); callers that
                # must tell "unmounted" from "empty" check the share's marker first.
                self._share = Share(self.root)
            return self._share

    # -- pins (see Backend.pinned) -------------------------------------------------------------
    def _where(self, name: str, *, whole: bool = False) -> tuple[Share, str]:
        """The share to reach `name` from, and `name` relative to it.

        The innermost pinned directory above `name` serves (`whole`: also the pinned directory
        itself, for a listing); otherwise the share root. Pins are per thread: the chunk-sync
        threads and any other caller keep walking from the root.
        """
        for prefix, share in reversed(getattr(self._pins, "stack", ())):
            if name.startswith(prefix) and name[len(prefix) : len(prefix) + 1] == "/":
                return share, name[len(prefix) + 1 :]
            if whole and name == prefix:
                return share, ""
        return self.share(), name

    def _pinned(self, prefix: str) -> contextlib.AbstractContextManager[None]:
        return _Pin(self, prefix)

    # -- reading -----------------------------------------------------------------------------
    def _stat(self, name: str) -> Item | None:
        entry = self._in_flight(name)
        if entry is not None:
            return Item(name.rpartition("/")[2], "file", entry[1], time.time())
        share, rel = self._where(name)
        st = share.lstat(rel)
        if st is None:
            return None
        kind = kind_of(st.st_mode)
        return Item(name.rpartition("/")[2], kind, st.st_size, st.st_mtime)

    def _list(self, prefix: str) -> list[Item]:
        return self._listing(prefix, stat=True)

    def _list_kinds(self, prefix: str) -> list[Item]:
        # The kinds from d_type (shareio.Share.entries(stat=False)): no lstat per entry.
        # Whatever is then opened is checked again when it is opened (O_NOFOLLOW, fstat).
        return self._listing(prefix, stat=False)

    def _listing(self, prefix: str, *, stat: bool) -> list[Item]:
        if prefix and self._inflight:
            with self._lock:
                pending = [f for n, (f, _) in self._inflight.items() if n.startswith(prefix + "/")]
            for future in pending:  # this process's own writes are listed once in place
                future.exception()
        share, rel = self._where(prefix, whole=True)
        return [
            Item(e.name, e.kind if e.kind != "missing" else "other", e.size, e.mtime)
            for e in share.entries(rel, stat=stat)
        ]

    def _in_flight(self, name: str) -> tuple[Future[None], int] | None:
        # Without deferred writes (the controller never makes any) there is nothing to look
        # up and no lock to take; a write this thread started is in the dict before it returns.
        if not self._inflight:
            return None
        with self._lock:
            return self._inflight.get(name)

    def _wait(self, name: str) -> None:
        entry = self._in_flight(name)
        if entry is not None:
            entry[0].exception()

    def _load(self, name: str, limit: int) -> bytes:
        self._wait(name)
        share, rel = self._where(name)
        return share.read_bytes(rel, limit)

    def _open(self, name: str) -> BinaryIO:
        share, rel = self._where(name)
        with share.open_regular(rel) as fd:
            return os.fdopen(os.dup(fd), "rb")

    # -- writing -----------------------------------------------------------------------------
    def _store(self, name: str, data: bytes, durable: bool) -> None:
        share = self.share(create=True)
        if durable:
            self._wait(name)
            share.write_atomic(name, data, create_dirs=True)
            return
        self._slots.acquire()
        try:
            tmp = share.write_temp(name, data)
        except BaseException:
            self._slots.release()
            raise
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(SYNC_THREADS, thread_name_prefix="chunk-sync")
            future = self._pool.submit(self._finish, share, tmp, name)
            self._inflight[name] = (future, len(data))
            self._pending.append(future)

    def _finish(self, share: Share, tmp: str, name: str) -> None:
        try:
            share.finish_temp(tmp, name)
            with self._lock:
                self._dirty.add(name.rpartition("/")[0])
        finally:
            with self._lock:
                self._inflight.pop(name, None)
            self._slots.release()

    def _flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        errors = [exc for exc in (f.exception() for f in pending) if exc is not None]
        if errors:
            first = errors[0]
            raise StoreError(f"storing a chunk failed: {getattr(first, 'message', first)}")
        with self._lock:
            dirty, self._dirty = self._dirty, set()
        share = self.share()
        for directory in sorted(dirty):
            share.sync_dir(directory)

    def _create(self, name: str, data: bytes) -> bool:
        share = self.share(create=True)
        parent = name.rpartition("/")[0]
        if parent:
            share.mkdir(parent)
        return share.create_exclusive(name, data)

    def _append(self, name: str, data: bytes) -> None:
        share = self.share(create=True)
        parent = name.rpartition("/")[0]
        if parent:
            share.mkdir(parent)
        share.append(name, data, sync=True)

    def _delete(self, name: str) -> bool:
        self._wait(name)
        return self.share().remove(name, allow_link=True)

    def _delete_tree(self, prefix: str) -> bool:
        return self.share().remove_tree(prefix)

    def _move(self, src: str, dst: str, replace: bool) -> bool:
        self._wait(src)
        share = self.share()
        parent = dst.rpartition("/")[0]
        if parent:
            share.mkdir(parent)
        st = share.lstat(src)
        if st is not None and stat.S_ISDIR(st.st_mode):
            if replace:
                raise StoreError(f"{share.path(dst)}: a directory is never moved over a name")
            if share.lstat(dst) is not None:
                return False
            share.rename_dir(src, dst)
            return True
        return share.rename(src, dst, replace=replace)

    def sweep_temps(self, prefix: str, older_than: float) -> int:
        try:
            return self.share().sweep_temp(prefix, older_than=older_than, now=time.time())
        except ShareMissing:
            return 0


class _Pin:
    """One pin of an FsBackend (see Backend.pinned): opened on entering, closed on leaving.

    A class rather than a generator-based context manager: scan pins two directories per
    box, thousands of times per run.
    """

    __slots__ = ("_backend", "_prefix", "_stack", "_sub")

    def __init__(self, backend: FsBackend, prefix: str) -> None:
        self._backend = backend
        self._prefix = prefix
        self._sub: Share | None = None
        self._stack: list[tuple[str, Share]] = []

    def __enter__(self) -> None:
        share, rel = self._backend._where(self._prefix)
        try:
            # Share.sub walks with openat + O_NOFOLLOW like every other access: a link or a
            # non-directory is never pinned, and then each operation reports it itself.
            sub = share.sub(rel)
        except (ShareAccessError, OSError):
            return
        self._stack = self._backend._pins.__dict__.setdefault("stack", [])
        self._stack.append((self._prefix, sub))
        self._sub = sub

    def __exit__(self, *_: object) -> None:
        if self._sub is not None:
            self._stack.pop()
            self._sub.close()
            self._sub = None


class FilesystemStore(ImageStore):
    """The image store on the backup share mounted at `root`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.fs = FsBackend(self.root)
        super().__init__(self.fs)
