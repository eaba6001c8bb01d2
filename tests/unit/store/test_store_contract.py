"""The store contract, run on the filesystem and the memory backend alike."""

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from onbox.errors import ImageNotFound, IntegrityError
from onbox.store import ImageStore
from onbox.store.records import CommitDisk, CommitRecord, DiskManifest, new_image_id

IP = "10.0.0.5"
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def cid(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


def make_image(store: ImageStore, ip: str, created: datetime, ids: list[str | None]) -> str:
    image_id = new_image_id(created)
    manifest = DiskManifest(disk="sda", size=len(ids) * 4, chunk_size=4, chunks=ids)
    digest = store.write_manifest(ip, image_id, manifest)
    store.commit(
        CommitRecord(
            id=image_id,
            box_ip=ip,
            created=created,
            disks=[
                CommitDisk(
                    disk="sda",
                    size=manifest.size,
                    chunk_size=4,
                    chunks=len(ids),
                    zero_chunks=ids.count(None),
                    stored_bytes=0,
                    manifest_sha256=digest,
                )
            ],
        )
    )
    return image_id


def test_chunk_put_has_get(store: ImageStore) -> None:
    assert not store.has_chunk(cid(1))
    assert store.put_chunk(cid(1), b"blob") is True
    assert store.put_chunk(cid(1), b"blob") is False
    assert store.has_chunk(cid(1))
    assert store.get_chunk(cid(1)) == b"blob"
    assert [s.id for s in store.chunk_stats()] == [cid(1)]
    with pytest.raises(IntegrityError, match=cid(2)):
        store.get_chunk(cid(2))


def test_empty_store_lists_nothing(store: ImageStore) -> None:
    assert store.list_images() == []
    assert store.list_images(IP) == []
    assert store.referenced_chunks() == set()


def test_uncommitted_image_is_not_listed(store: ImageStore) -> None:
    store.write_manifest(
        IP, new_image_id(T0), DiskManifest(disk="sda", size=0, chunk_size=4, chunks=[])
    )
    assert store.list_images(IP) == []
    assert len(store.pending_images()) == 1


def test_list_newest_last_and_per_box(store: ImageStore) -> None:
    b = make_image(store, IP, T0 + timedelta(days=1), [cid(2)])
    a = make_image(store, IP, T0, [cid(1), None])
    other = make_image(store, "10.0.0.6", T0, [cid(3)])
    assert [i.id for i in store.list_images(IP)] == [a, b]
    assert {i.id for i in store.list_images()} == {a, b, other}
    assert store.referenced_chunks() == {cid(1), cid(2), cid(3)}
    info = store.list_images(IP)[0]
    assert info.kind == "chunked" and info.disks[0].disk == "sda" and info.disks[0].size == 8


def test_delete_image(store: ImageStore) -> None:
    a = make_image(store, IP, T0, [cid(1)])
    store.delete_image(IP, a)
    assert store.list_images(IP) == []
    assert store.referenced_chunks() == set()
    with pytest.raises(ImageNotFound):
        store.delete_image(IP, a)


def test_manifest_checked_against_commit(store: ImageStore) -> None:
    a = make_image(store, IP, T0, [cid(1)])
    store.write_manifest(IP, a, DiskManifest(disk="sda", size=4, chunk_size=4, chunks=[cid(9)]))
    with pytest.raises(IntegrityError, match="does not match its commit record"):
        store.read_manifest(IP, a, "sda")


def test_resolve(store: ImageStore) -> None:
    a = make_image(store, IP, T0, [cid(1)])
    b = make_image(store, IP, T0 + timedelta(hours=1), [cid(1)])
    assert store.resolve(IP, "latest").id == b
    assert store.resolve(IP, a).id == a
    with pytest.raises(ImageNotFound, match="no image 'nope'"):
        store.resolve(IP, "nope")


def test_leases(store: ImageStore) -> None:
    lease = store.open_lease("backup-1")
    lease.add(cid(1))
    assert store.leased_chunks(stale_after=3600) == {cid(1)}
    assert store.leased_chunks(stale_after=-1) == set()
    lease.release()
    assert store.leased_chunks(stale_after=3600) == set()


def test_trash_is_reversible(store: ImageStore) -> None:
    store.put_chunk(cid(1), b"x")
    assert store.trash_chunk("gc1", cid(1))
    assert not store.has_chunk(cid(1))
    store.untrash_chunk("gc1", cid(1))
    assert store.get_chunk(cid(1)) == b"x"
    store.trash_chunk("gc1", cid(1))
    assert store.empty_trash("gc1") == 1
    assert not store.has_chunk(cid(1))
