"""free_space: skip through the real `testbox-maintenance`: the request says skip, the box maps
its disk (log lines per partition), stores only used blocks, and a restore of that image onto a
disk full of other garbage gives clean filesystems with every file intact."""

import pytest

from benchmarks._fsimage import MiB, PartSpec, build_disk, check_partition, garbage
from onbox.store import open_store
from tests.service.lab import BoxLab
from tests.unit.imaging.test_freespace import need

LAYOUT = [PartSpec("ext4", 24 * MiB, files=16), PartSpec("vfat", 16 * MiB, files=10)]


@pytest.mark.slow
def test_skip_backup_and_restore_through_the_service(lab: BoxLab) -> None:
    need("ext4", "vfat")
    built = build_disk(lab.root / "sda.img", 48 * MiB, LAYOUT)
    request = lab.request("backup").model_copy(update={"free_space": "skip"})
    run = lab.run(lab.arm(request), disks={"sda": built.path})
    assert run.code == 0, run.stderr
    result = lab.result(request)
    (figures,) = result.disks
    assert figures.bytes_free > 24 * MiB and figures.bytes_read < 48 * MiB
    log = lab.box_log()
    assert "sda: partition table: gpt" in log
    assert "sda: partition 1 (ext): " in log and "sda: partition 2 (fat): " in log
    store = open_store(lab.backup)
    (image,) = store.list_images(lab.ip)
    assert image.free_space == "skip"

    target = lab.root / "target.img"
    garbage(target, 48 * MiB, seed=42)
    restore = lab.request("restore", image=image.id)
    run = lab.run(lab.arm(restore), disks={"sda": target})
    assert run.code == 0, run.stderr
    assert lab.result(restore).disks[0].bytes_free == figures.bytes_free
    for index, spec in enumerate(LAYOUT):
        problems = check_partition(
            target, built.starts[index], spec.size, spec.fs, built.files[index]
        )
        assert problems == []


def test_skip_request_json_reaches_the_box(lab: BoxLab) -> None:
    """An old request.json (no free_space key) is raw; the field round-trips through the file."""
    request = lab.request("backup")
    lab.arm(request)
    assert '"free_space"' not in (lab.box_dir / "request.json").read_text()
    lab.arm(request.model_copy(update={"free_space": "skip"}))
    assert '"free_space": "skip"' in (lab.box_dir / "request.json").read_text()
