"""Share reads after the speed-up keep every bound and check they had.

`Share.read_bytes` sizes its first read from the descriptor's fstat and stops there without a
second read; `entries(stat=False)` types entries from d_type, files first. Neither may let a
byte past the limit, follow a link or open anything but a regular file: these pin the edges
(exactly the limit, one byte more, empty, nested paths, links, FIFOs) on a real directory.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from onbox.shareio import Entry, Share, ShareAccessError, ShareMissing


@pytest.fixture
def share(tmp_path: Path) -> Iterator[Share]:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "nested.json").write_bytes(b'{"a": 1}')
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "ten").write_bytes(b"0123456789")
    (tmp_path / "target").write_bytes(b"secret")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    (tmp_path / "dirlink").symlink_to(tmp_path / "d")
    os.mkfifo(tmp_path / "fifo")
    with Share(tmp_path) as s:
        yield s


@pytest.mark.parametrize("limit", [10, 11, 1 << 20])
def test_a_file_within_the_limit_is_read_whole(share: Share, limit: int) -> None:
    assert share.read_bytes("ten", limit) == b"0123456789"


@pytest.mark.parametrize("limit", [0, 5, 9])
def test_one_byte_over_the_limit_is_refused(share: Share, limit: int) -> None:
    with pytest.raises(ShareAccessError, match=f"larger than {limit} bytes"):
        share.read_bytes("ten", limit)


def test_empty_and_nested_files(share: Share) -> None:
    assert share.read_bytes("empty", 0) == b""
    assert share.read_json("d/nested.json") == {"a": 1}
    with share.sub("d") as sub:
        assert sub.read_bytes("nested.json") == b'{"a": 1}'


def test_a_file_longer_than_its_size_says_is_read_to_its_end_and_bounded() -> None:
    # /proc files are regular files whose fstat size is 0 whatever they hold: the first read
    # returns more than `size`, so reading goes on to EOF, and the limit still holds.
    with Share("/proc/self") as proc:
        fd, size = proc._open_regular(["status"])
        os.close(fd)
        assert size == 0
        assert b"Name:" in proc.read_bytes("status", 1 << 16)
        with pytest.raises(ShareAccessError, match="larger than 10 bytes"):
            proc.read_bytes("status", 10)


@pytest.mark.parametrize(
    ("rel", "problem"),
    [
        ("link", "symbolic link"),
        ("dirlink/nested.json", "symbolic link"),
        ("fifo", "not a regular file"),
        ("d", "directory where a file belongs"),
    ],
)
def test_links_fifos_and_directories_are_never_read(share: Share, rel: str, problem: str) -> None:
    with pytest.raises(ShareAccessError, match=problem):
        share.read_bytes(rel)


def test_missing_files(share: Share) -> None:
    with pytest.raises(ShareMissing):
        share.read_bytes("nothing")
    with pytest.raises(ShareMissing):
        share.read_bytes("d/nothing")
    assert share.try_read_bytes("nothing") is None


@pytest.mark.parametrize("rel", ["/etc/passwd", "../x", "d/../../x", "a\0b", ""])
def test_paths_that_could_leave_the_share(share: Share, rel: str) -> None:
    with pytest.raises(ShareAccessError):
        share.read_bytes(rel)


def test_listing_kinds_without_stat_match_lstat(share: Share) -> None:
    plain = {e.name: e.kind for e in share.entries()}
    quick = {e.name: e.kind for e in share.entries(stat=False)}
    assert quick == plain
    assert quick == {
        "d": "dir",
        "dirlink": "symlink",
        "empty": "file",
        "fifo": "other",
        "link": "symlink",
        "target": "file",
        "ten": "file",
    }
    assert share.entries("d", stat=False) == [Entry("nested.json", "file", 0, 0.0)]
