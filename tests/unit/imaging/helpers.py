"""Shared test helpers: damage a stored chunk on either backend (through the store's backend)."""

from onbox.store import ImageStore, layout


def flip_byte(store: ImageStore, chunk_id: str, at: int = -5) -> None:
    """Flip one byte of a chunk's stored (compressed) blob."""
    name = layout.chunk(chunk_id)
    damaged = bytearray(store.backend.load(name, 1 << 30))
    damaged[at] ^= 0x01
    store.backend.store(name, bytes(damaged))


def delete_chunk(store: ImageStore, chunk_id: str) -> None:
    assert store.trash_chunk("test", chunk_id)
    store.empty_trash("test")
