"""Names with a trailing newline: Python's `$` matches before a final "\\n", so every name check
in the on-box code uses `fullmatch`; this keeps that from regressing. The store's name check
(two expressions over the whole name, for speed) is held to the per-part rule it replaced."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


def _per_part(name: str) -> bool:
    """The rule as it was written before it became two expressions over the whole name."""
    parts = name.split("/")
    return len(parts) <= 8 and all(
        re.fullmatch(r"[A-Za-z0-9_.:-]{1,128}", p) and p not in (".", "..") for p in parts
    )


@given(st.lists(st.sampled_from(["a", ".", "..", "/", "b:", "-", "\n", "\0", "x" * 128, "y"])))
def test_store_names_follow_the_per_part_rule(pieces: list[str]) -> None:
    name = "".join(pieces)
    try:
        check_name(name)
        valid = True
    except StoreError:
        valid = False
    assert valid == _per_part(name), repr(name)


@pytest.mark.parametrize("depth", range(1, 11))
def test_store_names_have_at_most_eight_parts(depth: int) -> None:
    assert _per_part("/".join(["a"] * depth)) == (depth <= 8)
    if depth <= 8:
        check_name("/".join(["a"] * depth))
    else:
        with pytest.raises(StoreError):
            check_name("/".join(["a"] * depth))
