"""Names with a trailing newline: Python's `$` matches before a final "\\n", so every name check
in the on-box code uses `fullmatch`; this keeps that from regressing."""

import pytest

from onbox.errors import StoreError
from onbox.service import args
from onbox.store import layout
from onbox.store.backend import check_name


@pytest.mark.parametrize("name", ["sda\n", "20261125T200102Z-3f9a1c\n"])
def test_layout_patterns_refuse_a_trailing_newline(name: str) -> None:
    assert layout.DISK.fullmatch(name) is None
    assert layout.IMAGE_DIR_NAME.fullmatch(name.rstrip("\n") + "\n") is None
    assert args.DISK_NAME.fullmatch(name) is None


def test_store_names_refuse_a_trailing_newline() -> None:
    with pytest.raises(StoreError):
        check_name("chunks/ab\n")
