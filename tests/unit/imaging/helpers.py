"""Shared test helpers: damage a stored chunk on either backend (through the store's backend), and
skip (or, in CI, fail) a test whose tools are missing."""

import os
import shutil

import pytest

from onbox.store import ImageStore, layout

REQUIRED = os.environ.get("TESTBOX_E2E_REQUIRED") == "1"


def require(missing: list[str]) -> None:
    """Skip a test whose tools are missing here; in CI (TESTBOX_E2E_REQUIRED=1) fail instead,
    since there .ci/install-system-packages installed them and a skip would hide a gap."""
    if not missing:
        return
    message = f"needs {', '.join(missing)} (.ci/install-system-packages)"
    if REQUIRED:
        pytest.fail(message + " (TESTBOX_E2E_REQUIRED=1: a skip would hide this)")
    pytest.skip(message)


def partclone_missing() -> list[str]:
    found = shutil.which("partclone.extfs", path=os.environ.get("PATH", "") + ":/usr/sbin")
    return [] if found else ["partclone"]


def flip_byte(store: ImageStore, chunk_id: str, at: int = -5) -> None:
    """Flip one byte of a chunk's stored (compressed) blob."""
    name = layout.chunk(chunk_id)
    damaged = bytearray(store.backend.load(name, 1 << 30))
    damaged[at] ^= 0x01
    store.backend.store(name, bytes(damaged))


def delete_chunk(store: ImageStore, chunk_id: str) -> None:
    assert store.trash_chunk("test", chunk_id)
    store.empty_trash("test")
