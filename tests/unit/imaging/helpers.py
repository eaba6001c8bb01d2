"""Shared test helpers: damage a stored chunk on either backend."""

from pathlib import Path

from onbox.store import ImageStore, MemoryStore
from onbox.store.fs import FilesystemStore


def flip_byte(store: ImageStore, chunk_id: str, at: int = -5) -> None:
    """Flip one byte of a chunk's stored (compressed) blob."""
    if isinstance(store, MemoryStore):
        blob, mtime = store.chunks[chunk_id]
        damaged = bytearray(blob)
        damaged[at] ^= 0x01
        store.chunks[chunk_id] = (bytes(damaged), mtime)
        return
    assert isinstance(store, FilesystemStore)
    path: Path = store.chunk_dir / chunk_id[:2] / f"{chunk_id}.zst"
    damaged = bytearray(path.read_bytes())
    damaged[at] ^= 0x01
    path.write_bytes(bytes(damaged))


def delete_chunk(store: ImageStore, chunk_id: str) -> None:
    assert store.trash_chunk("test", chunk_id)
    store.empty_trash("test")
