"""`scan` through pinned directories, and with the caller's listing, says what it always said.

The speed-up (issue: reconcile of 1,000 boxes at 5-10x a plain walk) opens a box directory and
its `images/` once and reads every record from there; observe hands over the box listing it
already made. Neither may change a result or weaken a check: these compare both ways on the
same damaged store, on both backends, and show that a pinned link is never followed.
"""

import gc
import gzip
import os
import threading
from datetime import timedelta
from pathlib import Path

from onbox.store import ImageStore, open_store
from tests.unit.store.test_store_contract import IP, T0, cid, make_image


def damaged_box(store: ImageStore) -> None:
    make_image(store, IP, T0, [cid(1)])
    bad = make_image(store, IP, T0 + timedelta(hours=1), [cid(2)])
    make_image(store, IP, T0 + timedelta(hours=2), [cid(3)])
    store.backend.store(f"{IP}/images/{bad}/commit.json", b'{"id": ')
    store.backend.store(f"{IP}/images/20261101T130000Z-pend00/sda.manifest.json", b"{}")
    store.backend.store(f"{IP}/sda.gz", gzip.compress(b"legacy"))
    store.backend.store(f"{IP}/request.json", b"{}")


def box_names(store: ImageStore) -> set[str]:
    return {item.name for item in store.backend.list(IP)}


def test_scan_with_the_callers_listing_is_the_same(store: ImageStore) -> None:
    damaged_box(store)
    plain = store.scan(IP)
    assert [i.id for i in plain.images] and plain.damaged and plain.problems
    handed = store.scan(IP, names=box_names(store))
    assert handed == plain
    # Names that are gone since the caller listed them count as never there.
    assert store.scan(IP, names=box_names(store) | {"sdb.gz"}) == plain
    assert store.scan(IP, names={"request.json"}).images == []


def test_scan_of_every_box_is_the_same_per_box(store: ImageStore) -> None:
    damaged_box(store)
    make_image(store, "10.0.0.6", T0, [cid(4)])
    whole = store.scan()
    per_box = [store.scan(ip) for ip in (IP, "10.0.0.6")]
    assert sorted(i.id for i in whole.images) == sorted(i.id for p in per_box for i in p.images)


def test_a_linked_images_directory_is_never_followed_when_pinned(tmp_path: Path) -> None:
    share = tmp_path / "backup"
    share.mkdir()
    (share / "testbox-backup").touch()
    outside = tmp_path / "outside"
    store = open_store(share)
    make_image(store, "10.0.0.7", T0, [cid(1)])  # a real image, then moved outside
    os.rename(share / "10.0.0.7" / "images", outside)
    os.symlink(outside, share / "10.0.0.7" / "images")
    for listing in (store.scan("10.0.0.7"), store.scan("10.0.0.7", names={"images"})):
        assert listing.images == []
        assert any("symbolic link" in p for p in listing.problems)
    os.symlink(share / "10.0.0.7", share / "10.0.0.8")  # a linked box directory
    assert store.scan("10.0.0.8").images == []
    assert store.scan("10.0.0.8", names={"images"}).images == []


def test_pins_are_closed_and_per_thread(tmp_path: Path) -> None:
    (tmp_path / "testbox-backup").touch()
    store = open_store(tmp_path)
    damaged_box(store)
    store.scan(IP)  # the share root's own descriptor is opened once, here
    # Earlier tests' stores in reference cycles close their descriptors when the collector
    # frees them: collected first and the collector off while counting, a descriptor that
    # scan leaves open shows, and none closed by someone else's garbage hides it or fails.
    gc.collect()
    gc.disable()
    try:
        before = len(os.listdir("/proc/self/fd"))
        for _ in range(20):
            store.scan(IP)
        assert len(os.listdir("/proc/self/fd")) == before
    finally:
        gc.enable()
    seen: list[int] = []
    with store.backend.pinned(IP):
        thread = threading.Thread(target=lambda: seen.append(len(store.scan(IP).images)))
        thread.start()
        thread.join()
    assert seen == [len(store.scan(IP).images)]
