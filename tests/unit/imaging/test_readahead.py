"""ReadAhead alone: reads only what it is told, never behind the position, never more than
its depth at a time; errors surface where the chunk is taken; nothing reads after close."""

import threading
import time

import pytest

from onbox.errors import IntegrityError
from onbox.imaging.readahead import ReadAhead


class Fetch:
    """A fetch that records calls and can hold them until released."""

    def __init__(self, hold: bool = False) -> None:
        self.calls: list[str] = []
        self.lock = threading.Lock()
        self.running = 0
        self.most_running = 0
        self.release = threading.Event()
        if not hold:
            self.release.set()

    def __call__(self, cid: str, length: int) -> bytes:
        with self.lock:
            self.calls.append(cid)
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        self.release.wait(5)
        with self.lock:
            self.running -= 1
        if cid == "bad":
            raise IntegrityError("chunk bad is missing")
        return f"{cid}:{length}".encode()


def wanted(n: int) -> list[tuple[str, int] | None]:
    return [(f"c{i}", 100 + i) if i % 3 else None for i in range(n)]  # every 3rd: not wanted


def test_reads_ahead_only_the_wanted_items_from_the_position_on() -> None:
    fetch = Fetch()
    with ReadAhead(fetch, wanted(30), depth=4) as ahead:
        ahead.advance(10)
        time.sleep(0.1)
        assert fetch.calls and all(int(c[1:]) >= 10 for c in fetch.calls)
        assert all(int(c[1:]) % 3 for c in fetch.calls)
        assert ahead.take("c11", 111) == b"c11:111"


def test_never_more_than_depth_held_or_in_flight() -> None:
    fetch = Fetch(hold=True)
    ahead = ReadAhead(fetch, wanted(60), depth=3)
    try:
        for position in range(40):
            ahead.advance(position)
        time.sleep(0.1)
        assert fetch.most_running <= 3
        assert len(fetch.calls) <= 3
    finally:
        fetch.release.set()
        ahead.close()


def test_a_chunk_not_read_ahead_is_read_when_taken() -> None:
    fetch = Fetch()
    with ReadAhead(fetch, [None, None], depth=4) as ahead:
        ahead.advance(0)
        assert ahead.take("other", 7) == b"other:7"
        assert fetch.calls == ["other"]


def test_an_error_surfaces_where_the_chunk_is_taken() -> None:
    fetch = Fetch()
    with ReadAhead(fetch, [("bad", 1), ("c1", 2)], depth=4) as ahead:
        ahead.advance(0)
        with pytest.raises(IntegrityError, match="missing"):
            ahead.take("bad", 1)
        assert ahead.take("c1", 2) == b"c1:2"


def test_close_waits_for_running_reads() -> None:
    """A restore closes its files after close(): no read may still be running then."""
    fetch = Fetch(hold=True)
    ahead = ReadAhead(fetch, wanted(30), depth=2)
    ahead.advance(0)
    time.sleep(0.05)
    assert fetch.running == 2
    threading.Timer(0.2, fetch.release.set).start()
    ahead.close()
    assert fetch.running == 0
