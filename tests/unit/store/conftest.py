"""Every store test runs on both backends: the contract is the same."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from onbox.store import ImageStore, MemoryStore, open_store


@pytest.fixture(params=["fs", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ImageStore]:
    if request.param == "fs":
        (tmp_path / "testbox-backup").touch()
        yield open_store(tmp_path)
    else:
        yield MemoryStore()
