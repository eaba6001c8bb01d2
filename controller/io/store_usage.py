"""How much the image store on the backup share spends: its chunk files, each counted once.

The one measurement `controller.core.store_totals` cannot make itself (it is pure): one pass
over the store's chunk listing, through the store's own interface.
"""

from pathlib import Path

from onbox.store import open_store


def store_usage(backup_root: Path) -> tuple[int, int]:
    """(stored bytes, chunk count) of the store on the backup share."""
    stored = chunks = 0
    for stat in open_store(backup_root).chunk_stats():
        stored += stat.stored_bytes
        chunks += 1
    return stored, chunks
