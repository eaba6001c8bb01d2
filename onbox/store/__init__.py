"""The image store: chunks and image records over a narrow backend (see base.ImageStore).

`open_store(backup_root)` is the store on the backup share (its config checked when the share
exists); `MemoryStore()` is for tests. Callers get the `ImageStore` interface either way.
"""

from pathlib import Path

from onbox.store.backend import Backend, StoreMissing
from onbox.store.base import LEGACY_ID, ImageStore, Lease, StoreListing
from onbox.store.fs import FilesystemStore
from onbox.store.memory import MemoryStore


def open_store(backup_root: Path) -> ImageStore:
    """The store on the backup share at `backup_root`; its format is checked now when the
    share exists (StoreError for a format this version does not know), and nothing is created
    until the first write (which adopts a store an older version made, see docs/images.md)."""
    store = FilesystemStore(Path(backup_root))
    if Path(backup_root).is_dir():
        store.check_config()
    return store


__all__ = [
    "LEGACY_ID",
    "Backend",
    "FilesystemStore",
    "ImageStore",
    "Lease",
    "MemoryStore",
    "StoreListing",
    "StoreMissing",
    "open_store",
]
