"""The memory backend, for tests: same names, same contract as the filesystem, no I/O.

Thread-safe (one lock), because the engine calls the store from worker threads. Directories
are implicit (a name's parents exist while it does), as on an object store; `clock` lets tests
age chunks and leases. `MemoryStore` is the image store on top of it, with `add_legacy` standing
in for a seed gz file in a box directory.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from typing import BinaryIO

from onbox.errors import StoreError
from onbox.store.backend import Backend, Item, StoreMissing
from onbox.store.base import ImageStore
from onbox.store.layout import legacy_name
from onbox.store.legacy import legacy_disk


class MemoryBackend(Backend):
    where = "memory"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.files: dict[str, tuple[bytes, float]] = {}
        # prefix -> names of its direct children (files and implicit directories)
        self._children: dict[str, set[str]] = {}

    def _index(self, name: str) -> None:
        parts = name.split("/")
        for depth in range(len(parts)):
            self._children.setdefault("/".join(parts[:depth]), set()).add(parts[depth])

    def _unindex(self, name: str) -> None:
        parts = name.split("/")
        for depth in range(len(parts), 0, -1):
            prefix, child = "/".join(parts[: depth - 1]), parts[depth - 1]
            full = "/".join(parts[:depth])
            if full in self.files or self._children.get(full):
                return
            self._children.get(prefix, set()).discard(child)

    def _is_dir(self, name: str) -> bool:
        return bool(self._children.get(name))

    def _dir_item(self, name: str) -> Item:
        mtimes = [m for n, (_, m) in self.files.items() if n.startswith(name + "/")]
        return Item(name.rpartition("/")[2], "dir", 0, max(mtimes, default=0.0))

    def _stat(self, name: str) -> Item | None:
        with self.lock:
            entry = self.files.get(name)
            if entry is not None:
                return Item(name.rpartition("/")[2], "file", len(entry[0]), entry[1])
            return self._dir_item(name) if self._is_dir(name) else None

    def _list(self, prefix: str) -> list[Item]:
        with self.lock:
            if prefix and prefix in self.files:
                raise StoreError(f"memory/{prefix}: is a file where a directory belongs")
            out = []
            for child in sorted(self._children.get(prefix, ())):
                item = self._stat(f"{prefix}/{child}" if prefix else child)
                if item is not None:
                    out.append(item)
            return out

    def _load(self, name: str, limit: int) -> bytes:
        with self.lock:
            entry = self.files.get(name)
            if entry is None:
                if self._is_dir(name):
                    raise StoreError(f"memory/{name}: is a directory where a file belongs")
                raise StoreMissing(f"memory/{name}: does not exist")
        if len(entry[0]) > limit:
            raise StoreError(f"memory/{name}: larger than {limit} bytes")
        return entry[0]

    def _open(self, name: str) -> BinaryIO:
        return io.BytesIO(self._load(name, 1 << 62))

    def _store(self, name: str, data: bytes, durable: bool) -> None:
        del durable
        with self.lock:
            if self._is_dir(name):
                raise StoreError(f"memory/{name}: is a directory where a file belongs")
            self.files[name] = (bytes(data), self.clock())
            self._index(name)

    def _create(self, name: str, data: bytes) -> bool:
        with self.lock:
            if name in self.files or self._is_dir(name):
                return False
            self._store(name, data, True)
            return True

    def _append(self, name: str, data: bytes) -> None:
        with self.lock:
            old = self.files.get(name, (b"", 0.0))[0]
            self._store(name, old + data, True)

    def _delete(self, name: str) -> bool:
        with self.lock:
            if self._is_dir(name):
                raise StoreError(f"memory/{name}: is a directory where a file belongs; not removed")
            if self.files.pop(name, None) is None:
                return False
            self._unindex(name)
            return True

    def _delete_tree(self, prefix: str) -> bool:
        with self.lock:
            if prefix in self.files:
                raise StoreError(f"memory/{prefix}: is a file where a directory belongs")
            doomed = [n for n in self.files if n.startswith(prefix + "/")]
            for n in doomed:
                del self.files[n]
                self._unindex(n)
            return bool(doomed)

    def _move(self, src: str, dst: str, replace: bool) -> bool:
        with self.lock:
            if src in self.files:
                if not replace and (dst in self.files or self._is_dir(dst)):
                    return False
                data, mtime = self.files.pop(src)
                self._unindex(src)
                self.files[dst] = (data, mtime)
                self._index(dst)
                return True
            if not self._is_dir(src):
                raise StoreMissing(f"memory/{src}: does not exist")
            if dst in self.files or self._is_dir(dst):
                return False
            moved = [n for n in self.files if n.startswith(src + "/")]
            for n in moved:
                entry = self.files.pop(n)
                self._unindex(n)
                new = dst + n[len(src) :]
                self.files[new] = entry
                self._index(new)
            return True


class MemoryStore(ImageStore):
    """The image store in memory (tests)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.memory = MemoryBackend(clock)
        super().__init__(self.memory)

    @property
    def clock(self) -> Callable[[], float]:
        return self.memory.clock

    def add_legacy(self, box_ip: str, name: str, gz: bytes, mtime: float | None = None) -> None:
        """A seed gz file `<box>/<name>`, as the old scripts left it."""
        if legacy_disk(name) is None:
            raise StoreError(f"not a legacy image name: {name!r}")
        with self.memory.lock:
            key = legacy_name(box_ip, name)
            self.memory.files[key] = (gz, self.clock() if mtime is None else mtime)
            self.memory._index(key)
