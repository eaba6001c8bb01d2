"""A chunk found bad mid-restore (after the last verify): the result says which disk is
partially restored, and the next attempt refuses before writing (the restore recorded it)."""

import pytest

from onbox.store import layout, open_store
from tests.service.lab import BoxLab, make_disk
from tests.unit.imaging.helpers import flip_byte

MiB = 1 << 20


@pytest.mark.slow
def test_bad_chunk_mid_restore_gives_partial_disks(lab: BoxLab) -> None:
    disk = make_disk(lab.root / "sda.img", 12 * MiB)
    request = lab.request("backup")
    assert lab.run(lab.arm(request), disks={"sda": disk}).code == 0
    image = lab.result(request).image_id
    assert image is not None
    store = open_store(lab.backup)
    chunks = [c for c in store.read_manifest(lab.ip, image, "sda").chunks if c]
    flip_byte(store, chunks[-1])
    with open(disk, "r+b") as f:  # the box's disk differs, so the restore must write
        f.write(b"\x01" * (12 * MiB))

    restore = lab.request("restore", image=image)
    run = lab.run(lab.arm(restore), disks={"sda": disk})
    assert run.code == 1
    result = lab.result(restore)
    assert result.outcome == "failure" and result.partial_disks == ["sda"]
    assert result.error is not None and "partially restored" in result.error
    assert "offset" in result.error
    assert store.backend.stat(layout.verify_record(f"restore-{lab.ip}")) is not None
