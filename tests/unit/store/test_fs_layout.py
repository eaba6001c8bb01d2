"""The filesystem backend's layout on the backup share, and legacy images next to new ones."""

import gzip
import os
from pathlib import Path

from onbox.store import open_store
from tests.unit.store.test_store_contract import T0, cid, make_image

IP = "10.0.0.5"


def test_layout(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.put_chunk(cid(1), b"blob")
    image_id = make_image(store, IP, T0, [cid(1), None])
    assert (tmp_path / "store" / "chunks" / cid(1)[:2] / f"{cid(1)}.zst").read_bytes() == b"blob"
    image_dir = tmp_path / IP / "images" / image_id
    assert sorted(p.name for p in image_dir.iterdir()) == ["commit.json", "sda.manifest.json"]
    assert oct((image_dir / "commit.json").stat().st_mode & 0o777) == "0o644"


def test_legacy_images_listed(tmp_path: Path) -> None:
    box = tmp_path / IP
    box.mkdir()
    (box / "tb-01").touch()
    (box / "sda.raw.gz").write_bytes(gzip.compress(b"a" * 100))
    (box / "sdb.gz").write_bytes(gzip.compress(b"b" * 100))
    (box / "notes.gz").write_bytes(b"not a disk")
    os.utime(box / "sda.raw.gz", (1_700_000_000, 1_700_000_000))
    os.utime(box / "sdb.gz", (1_700_000_100, 1_700_000_100))
    store = open_store(tmp_path)
    (legacy,) = store.list_images(IP)
    assert legacy.id == "legacy" and legacy.kind == "legacy"
    assert [d.disk for d in legacy.disks] == ["sda", "sdb"]
    assert legacy.created.timestamp() == 1_700_000_100
    chunked = make_image(store, IP, T0, [cid(1)])
    assert [i.id for i in store.list_images(IP)] == ["legacy", chunked]


def test_boxes_without_images_and_foreign_dirs(tmp_path: Path) -> None:
    for i in range(50):
        (tmp_path / f"10.0.1.{i}").mkdir()
    (tmp_path / "store").mkdir()
    (tmp_path / "lost+found").mkdir()
    (tmp_path / "maintenance.log").touch()
    assert open_store(tmp_path).list_images() == []
