"""Damage is found and named, and a damaged image never touches a disk."""

import random
from pathlib import Path

import pytest

from onbox.errors import ImageNotFound, IntegrityError
from onbox.imaging.backup import backup_disks
from onbox.imaging.restore import PartialRestore, restore_image
from onbox.imaging.verify import verify_images
from onbox.store import ImageStore
from tests.unit.imaging.conftest import CS, IP, sparse_disk, write_disk
from tests.unit.imaging.helpers import delete_chunk, flip_byte


def backed_up(store: ImageStore, tmp_path: Path) -> tuple[str, bytes, list[str | None]]:
    rng = random.Random(7)
    data = rng.randbytes(3 * CS) + bytes(CS) + b"text " * 2000
    report = backup_disks(store, IP, {"sda": write_disk(tmp_path / "s.img", data)}, chunk_size=CS)
    chunks = store.read_manifest(IP, report.image_id, "sda").chunks
    return report.image_id, data, chunks


@pytest.mark.parametrize("damage", ["flip", "delete"])
def test_verify_names_image_and_offset(store: ImageStore, tmp_path: Path, damage: str) -> None:
    image_id, _, chunks = backed_up(store, tmp_path)
    assert verify_images(store).ok
    bad = chunks[2]
    assert bad is not None
    (flip_byte if damage == "flip" else delete_chunk)(store, bad)
    report = verify_images(store, IP, image_id)
    assert not report.ok
    (problem,) = report.problems
    assert (problem.image_id, problem.disk, problem.offset) == (image_id, "sda", 2 * CS)
    assert problem.kind == ("corrupt" if damage == "flip" else "missing")
    assert f"image {image_id} disk sda offset {2 * CS}" in str(problem)


def test_restore_refuses_known_bad_chunk_target_unchanged(
    store: ImageStore, tmp_path: Path
) -> None:
    """verify recorded the chunk bad: the restore refuses before its first write."""
    image_id, _, chunks = backed_up(store, tmp_path)
    assert chunks[1] is not None
    flip_byte(store, chunks[1])
    assert not verify_images(store).ok
    before = b"old disk content " * 2000
    target = write_disk(tmp_path / "t.img", before)
    with pytest.raises(
        IntegrityError, match=rf"{image_id} cannot be restored.*offset {CS}.*known bad.*no disk"
    ):
        restore_image(store, IP, image_id, {"sda": target})
    assert target.read_bytes() == before


@pytest.mark.parametrize("target_kind", ["zeros", "sparse"])  # sparse: chunks read ahead
def test_damage_after_verify_is_caught_while_writing(
    store: ImageStore, tmp_path: Path, target_kind: str
) -> None:
    """A chunk that turned bad since verify: found mid-restore, with offset, disk partial."""
    image_id, _, chunks = backed_up(store, tmp_path)
    assert verify_images(store).ok
    assert chunks[2] is not None
    flip_byte(store, chunks[2])
    target = tmp_path / "t.img"
    if target_kind == "sparse":
        sparse_disk(target, 8 * CS)
    else:
        write_disk(target, bytes(8 * CS))
    with pytest.raises(PartialRestore, match=rf"offset {2 * CS}.*partially restored") as caught:
        restore_image(store, IP, image_id, {"sda": target}, workers=1)
    assert (caught.value.disks, caught.value.offset) == (["sda"], 2 * CS)
    # The restore recorded what it found: the next attempt refuses before writing.
    with pytest.raises(IntegrityError, match=r"known bad.*no disk was touched"):
        restore_image(store, IP, image_id, {"sda": target}, workers=1)


def test_missing_chunk_refused_even_without_precheck(store: ImageStore, tmp_path: Path) -> None:
    image_id, _, chunks = backed_up(store, tmp_path)
    assert chunks[0] is not None
    delete_chunk(store, chunks[0])
    target = write_disk(tmp_path / "t.img", b"x" * (8 * CS))
    with pytest.raises(IntegrityError, match="missing"):
        restore_image(store, IP, image_id, {"sda": target}, precheck=False)
    assert target.read_bytes() == b"x" * (8 * CS)


def test_unknown_image(store: ImageStore, tmp_path: Path) -> None:
    backed_up(store, tmp_path)
    with pytest.raises(ImageNotFound, match="no image 'nope'"):
        verify_images(store, IP, "nope")
    with pytest.raises(ImageNotFound):
        restore_image(store, "10.9.9.9", "latest", {"sda": tmp_path / "s.img"})
