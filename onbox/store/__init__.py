"""The image store: chunks and image records behind one small interface (see base.ImageStore).

`open_store(backup_root)` is the store on the backup share; `MemoryStore()` is for tests.
"""

from pathlib import Path

from onbox.store.base import LEGACY_ID, ImageStore, Lease
from onbox.store.fs import FilesystemStore
from onbox.store.memory import MemoryStore


def open_store(backup_root: Path) -> FilesystemStore:
    """The store on the backup share mounted at `backup_root` (nothing is created until written)."""
    return FilesystemStore(Path(backup_root))


__all__ = ["LEGACY_ID", "FilesystemStore", "ImageStore", "Lease", "MemoryStore", "open_store"]
