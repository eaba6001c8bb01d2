"""The store contract, run on the filesystem and the memory backend alike."""

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from onbox.errors import DamagedImage, ImageNotFound, IntegrityError, StoreError
from onbox.store import ImageStore, StoreMissing
from onbox.store.base import STORE_FORMAT
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


# --- the narrow interface: names validated once, one error type, on both backends ----------

BAD_NAMES = ["../etc", "10.0.0.5/../..", "/etc", "", "10.0.0.05", "a b", "10.0.0.5\0"]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_box_names_are_validated_on_every_backend(store: ImageStore, bad: str) -> None:
    for call in (
        lambda: store.committed_ids(bad),
        lambda: store.list_images(bad),
        lambda: store.legacy_files(bad),
        lambda: store.read_commit(bad, new_image_id(T0)),
        lambda: store.delete_image(bad, new_image_id(T0)),
    ):
        with pytest.raises(StoreError, match="not a box IP address"):
            call()


@pytest.mark.parametrize("bad", ["../x", "x" * 65, "ab/cd", "", ".hidden"])
def test_image_ids_are_validated(store: ImageStore, bad: str) -> None:
    with pytest.raises(ImageNotFound):
        store.read_commit(IP, bad)


@pytest.mark.parametrize("bad", ["../" + "a" * 61, "A" * 64, "a" * 63, ""])
def test_chunk_ids_are_validated(store: ImageStore, bad: str) -> None:
    for call in (
        lambda: store.put_chunk(bad, b"x"),
        lambda: store.get_chunk(bad),
        lambda: store.stat_chunk(bad),
        lambda: store.trash_chunk("gc-1", bad),
    ):
        with pytest.raises(StoreError, match="not a chunk id"):
            call()


@pytest.mark.parametrize("bad", ["../x", "a/..", "..", "x\0y", "/abs", "a//b"])
def test_backend_names_are_validated_before_any_backend_sees_them(
    store: ImageStore, bad: str
) -> None:
    backend = store.backend
    for call in (
        lambda: backend.load(bad, 10),
        lambda: backend.store(bad, b"x"),
        lambda: backend.delete(bad),
        lambda: backend.move(bad, "x"),
        lambda: backend.append(bad, b"x"),
    ):
        with pytest.raises(StoreError, match="not a valid store name"):
            call()


def test_missing_chunk_is_the_same_error_everywhere(store: ImageStore) -> None:
    assert store.stat_chunk(cid(5)) is None
    assert store.locate_chunk(cid(5)) is None
    with pytest.raises(IntegrityError, match=f"chunk {cid(5)} is missing"):
        store.get_chunk(cid(5))
    with pytest.raises(IntegrityError, match=f"chunk {cid(5)} is missing"):
        store.find_chunk(cid(5))
    assert store.trash_chunk("gc-1", cid(5)) is False
    assert store.untrash_chunk("gc-1", cid(5)) is False
    with pytest.raises(StoreMissing):
        store.backend.load("store/nothing", 10)
    assert store.backend.delete("store/nothing") is False


def test_trash_is_readable_until_the_next_gc(store: ImageStore) -> None:
    store.put_chunk(cid(1), b"x")
    assert store.trash_chunk("gc-dead", cid(1))
    assert store.stat_chunk(cid(1)) is None  # backups never dedup against the trash
    assert store.find_chunk(cid(1)) == b"x"  # readers still find it
    assert store.trash_runs() == ["gc-dead"] and store.trashed_chunks("gc-dead") == [cid(1)]


def test_config_written_on_first_write_and_checked(store: ImageStore) -> None:
    assert store.check_config() is None  # an older store: nothing yet, nothing required
    store.put_chunk(cid(1), b"x")
    config = store.check_config()
    assert config is not None and config["format"] == STORE_FORMAT
    store.backend.store("store/config.json", b'{"format": 2}')
    with pytest.raises(StoreError, match="store format 2 is not the format this version reads"):
        store.check_config()


def test_commit_record_must_match_its_directory(store: ImageStore) -> None:
    a = make_image(store, IP, T0, [cid(1)])
    b = make_image(store, IP, T0 + timedelta(hours=1), [cid(2)])
    record = store.read_commit(IP, a).model_copy(update={"id": b})
    store.backend.store(f"{IP}/images/{a}/commit.json", record.model_dump_json().encode())
    with pytest.raises(DamagedImage, match="not its directory"):
        store.read_commit(IP, a)
    listing = store.scan(IP)
    assert [i.id for i in listing.images] == [b]
    assert listing.damaged[0][:2] == (IP, a) and IP in listing.problems[0]
