"""Each action through the real `testbox-maintenance`, file-backed disks on temp shares: the
result record, the logs, the info files, and the PXE config removed on success, kept on failure."""

import hashlib
import subprocess
from pathlib import Path

import pytest

from onbox.store import open_store
from schema.inventory import Inventory
from schema.layout import BOX_OUTPUT_LOG, DISK_LIST, INFO_TXT, INFO_ZIP, INVENTORY
from tests.service.lab import BoxLab, make_disk

MiB = 1 << 20


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def scramble(path: Path, fill: int = 0xA5) -> None:
    """Overwrite the middle of a disk with other bytes (a damaged or reinstalled OS)."""
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(size // 8)
        f.write(bytes([fill]) * (size // 2))


def backup(lab: BoxLab, disk: Path, action: str = "backup", token: str | None = None) -> str:
    request = lab.request(action, token=token)
    run = lab.run(lab.arm(request), disks={"sda": disk})
    assert run.code == 0, run.stderr
    image_id = lab.result(request).image_id
    assert image_id is not None
    return image_id


def test_backup_records_result_logs_info_and_removes_config(lab: BoxLab) -> None:
    disk = make_disk(lab.root / "sda.img", 3 * MiB)
    request = lab.request("backup")
    run = lab.run(lab.arm(request), disks={"sda": disk})
    assert run.code == 0, run.stderr
    result = lab.result(request)
    assert (result.outcome, result.attempt, result.action) == ("success", 1, "backup")
    assert result.error is None and result.service_version
    assert [h.outcome for h in result.history] == ["success"]
    assert result.started <= result.finished
    (figures,) = result.disks
    assert (figures.disk, figures.size, figures.bytes_read) == ("sda", 3 * MiB, 3 * MiB)
    assert 0 < figures.bytes_stored < 3 * MiB  # a quarter is zeros, the rest compresses a bit
    images = open_store(lab.backup).list_images(lab.ip)
    assert [i.id for i in images] == [result.image_id]
    assert not lab.config.exists()
    for name in (INFO_TXT, INFO_ZIP, INVENTORY):
        assert (lab.box_dir / name).stat().st_size > 0
    inventory = Inventory.model_validate_json((lab.box_dir / INVENTORY).read_bytes())
    assert [(d.name, d.size) for d in inventory.disks] == [("sda", 3 * MiB)]
    box_log = lab.box_log()
    assert f"{lab.ip}: info: ==== testbox-maintenance" in box_log
    assert "backup sda: 3.0 MiB of 3.0 MiB (100%)" in box_log  # the engine's progress
    assert "backup succeeded (attempt 1" in box_log
    assert "removed pxelinux.cfg/0A00020F" in box_log
    assert f"{lab.ip}: info: backup succeeded" in lab.global_log()
    output = (lab.box_dir / BOX_OUTPUT_LOG).read_text()
    assert run.stdout in output  # everything printed is also in the output log


def test_backup_refuses_when_box_has_an_image(lab: BoxLab) -> None:
    disk = make_disk(lab.root / "sda.img", 1 * MiB)
    first = backup(lab, disk)
    request = lab.request("backup", token="again-by-mistake")
    append = lab.arm(request)
    for attempt in (1, 2):
        run = lab.run(append, disks={"sda": disk})
        assert run.code == 1
        assert "backup refused" in run.stderr and "use backup-again" in run.stderr
        result = lab.result(request)
        assert (result.outcome, result.attempt) == ("failure", attempt)
        assert [h.attempt for h in result.history] == list(range(1, attempt + 1))
        assert lab.config.exists()  # kept for the retry; the controller stops at max_attempts
    assert [i.id for i in open_store(lab.backup).list_images(lab.ip)] == [first]
    assert f"{lab.ip}: error: backup failed (attempt 2 of 3" in lab.global_log()


@pytest.mark.slow
def test_backup_again_adds_an_image(lab: BoxLab) -> None:
    disk = make_disk(lab.root / "sda.img", 1 * MiB)
    first = backup(lab, disk)
    scramble(disk)
    second = backup(lab, disk, "backup-again", token="t2")
    assert second != first
    assert [i.id for i in open_store(lab.backup).list_images(lab.ip)] == [first, second]


@pytest.mark.slow
def test_restore_latest_and_by_id_onto_a_scrambled_disk(lab: BoxLab) -> None:
    disk = make_disk(lab.root / "sda.img", 2 * MiB)
    original = sha(disk)
    first = backup(lab, disk)
    scramble(disk)
    changed = sha(disk)
    second = backup(lab, disk, "backup-again", token="t2")
    # By id: the original content; latest: the scrambled state of the second backup.
    for ref, image_id, expected in ((first, first, original), ("latest", second, changed)):
        scramble(disk, fill=0x5A)
        request = lab.request("restore", image=ref)
        run = lab.run(lab.arm(request), disks={"sda": disk})
        assert run.code == 0, run.stderr
        assert sha(disk) == expected
        result = lab.result(request)
        assert result.image_id == image_id
        (figures,) = result.disks
        assert figures.bytes_written + figures.bytes_skipped == 2 * MiB
        assert figures.bytes_written > 0
        assert not lab.config.exists()


def test_restore_of_a_missing_image_fails_without_touching_the_disk(lab: BoxLab) -> None:
    disk = make_disk(lab.root / "sda.img", 1 * MiB)
    before = sha(disk)
    request = lab.request("restore")
    run = lab.run(lab.arm(request), disks={"sda": disk})
    assert run.code == 1
    assert "has no images" in run.stderr
    assert sha(disk) == before
    assert lab.result(request).outcome == "failure"
    assert lab.config.exists()


def test_restore_from_legacy_gz_made_with_dd_and_gzip(lab: BoxLab) -> None:
    disk = make_disk(lab.root / "sda.img", 2 * MiB)
    original = sha(disk)
    lab.box_dir.mkdir(parents=True)
    # The seed's way: dd if=/dev/sda | gzip > <ip>/sda.gz
    subprocess.run(
        f"dd if={disk} bs=1M status=none | gzip -c > {lab.box_dir / 'sda.gz'}",
        shell=True,
        check=True,
    )
    scramble(disk)
    request = lab.request("restore", image="legacy")
    run = lab.run(lab.arm(request), disks={"sda": disk})
    assert run.code == 0, run.stderr
    assert sha(disk) == original
    assert lab.result(request).image_id == "legacy"
    assert not lab.config.exists()


def test_refresh_info_writes_info_only(lab: BoxLab) -> None:
    disk = make_disk(lab.root / "sda.img", 1 * MiB)
    before = sha(disk)
    request = lab.request("refresh-info")
    run = lab.run(lab.arm(request), disks={"sda": disk})
    assert run.code == 0, run.stderr
    assert lab.result(request).outcome == "success"
    assert lab.result(request).disks == []
    for name in (INFO_TXT, INFO_ZIP, INVENTORY):
        assert (lab.box_dir / name).exists()
    assert not (lab.backup / "store").exists()
    assert sha(disk) == before
    assert not lab.config.exists()


def test_rescue_records_ready_and_keeps_config(lab: BoxLab) -> None:
    request = lab.request("rescue")
    append = lab.arm(request)
    for attempt in (1, 2):  # every rescue boot records itself
        run = lab.run(append, disks={"sda": make_disk(lab.root / "sda.img", MiB)})
        assert run.code == 0, run.stderr
        result = lab.result(request)
        assert (result.outcome, result.attempt) == ("rescue-ready", attempt)
        assert lab.config.exists()
    assert (lab.box_dir / INFO_TXT).exists()  # info was missing, so it was collected
    assert "rescue ready" in lab.global_log()


def test_not_a_block_device_is_skipped_with_a_log_line(lab: BoxLab) -> None:
    """No --disk: the listed names are /dev/<name>; one that is not a block device is skipped
    (seed); refresh-info goes on, a backup with nothing left to image fails."""
    request = lab.request("refresh-info", disks=["sdzz"])
    run = lab.run(lab.arm(request), "--disk-wait", "0.5")
    assert run.code == 0, run.stderr
    # The listed disk is waited for (bounded: no udev-settle in the maintenance boot) first.
    assert "waiting up to 0.5 s for /dev/sdzz" in lab.box_log()
    assert "/dev/sdzz is not a block device, skipped" in lab.box_log()
    request = lab.request("backup-again", disks=["sdzz"])
    run = lab.run(lab.arm(request), "--disk-wait", "0")
    assert run.code == 1
    assert "no disks to image" in run.stderr
    assert lab.result(request).outcome == "failure"


def test_disk_list_file_decides_the_disks(lab: BoxLab) -> None:
    sda = make_disk(lab.root / "sda.img", MiB, seed=1)
    sdb = make_disk(lab.root / "sdb.img", MiB, seed=2)
    request = lab.request("backup", disks=["sda", "sdb"])
    append = lab.arm(request)
    (lab.box_dir / DISK_LIST).write_text("# the seed's file\n/dev/sdb\n")
    run = lab.run(append, disks={"sda": sda, "sdb": sdb})
    assert run.code == 0, run.stderr
    assert [d.disk for d in lab.result(request).disks] == ["sdb"]
    assert "imaging disks sdb; the request lists sda, sdb" in lab.box_log()


def test_missing_tools_are_noted_not_fatal(lab: BoxLab) -> None:
    """A maintenance root without pciutils, dmidecode, fdisk: the info says so, the run works."""
    request = lab.request("refresh-info")
    empty_bin = lab.root / "empty-bin"
    empty_bin.mkdir()
    run = lab.run(
        lab.arm(request), disks={"sda": make_disk(lab.root / "sda.img", MiB)}, path=empty_bin
    )
    assert run.code == 0, run.stderr
    info = (lab.box_dir / INFO_TXT).read_text()
    for tool in ("lspci", "biosdecode", "dmidecode", "fdisk", "dmesg"):
        assert f"({tool}: not installed)" in info
    assert info.startswith(f"Hostname: unknown\nIP: {lab.ip}\nHEXIP: 0A00020F\n")


def test_hostname_from_reverse_lookup_becomes_a_file(tmp_path: Path) -> None:
    lab = BoxLab(tmp_path, ip="127.0.0.1").make_shares()
    request = lab.request("refresh-info")
    run = lab.run(lab.arm(request), disks={"sda": make_disk(tmp_path / "sda.img", MiB)})
    assert run.code == 0, run.stderr
    hostname = lab.result(request).hostname
    assert hostname != "unknown"
    assert (lab.box_dir / hostname).is_file()


def test_restore_onto_a_smaller_disk_is_refused_untouched(lab: BoxLab) -> None:
    disk = make_disk(lab.root / "sda.img", 2 * MiB)
    backup(lab, disk)
    small = make_disk(lab.root / "small.img", MiB, seed=7)
    before = sha(small)
    request = lab.request("restore", token="smaller")
    run = lab.run(lab.arm(request), disks={"sda": small})
    assert run.code == 1
    assert "refusing to restore sda" in run.stderr
    assert sha(small) == before
    assert lab.config.exists()


@pytest.mark.slow
def test_an_unreadable_earlier_result_is_refused_then_written_afresh(lab: BoxLab) -> None:
    """The service writes results atomically, so a malformed one is not its own: it acts on
    nothing, and records the refusal in its place; the next boot then carries on from it."""
    request = lab.request("refresh-info")
    append = lab.arm(request)
    results = lab.box_dir / "results"
    results.mkdir()
    (results / f"{request.request_id}.json").write_text("{not json")
    disks = {"sda": make_disk(lab.root / "sda.img", MiB)}
    run = lab.run(append, disks=disks)
    assert run.code == 1
    assert "earlier result unusable" in lab.box_log()
    assert "is not valid JSON" in lab.box_log()
    result = lab.result(request)
    assert (result.outcome, result.attempt, len(result.history)) == ("failure", 1, 1)
    assert not (lab.box_dir / "testbox-info.txt").exists()  # nothing acted on
    run = lab.run(append, disks=disks)
    assert run.code == 0, run.stderr
    result = lab.result(request)
    assert (result.outcome, result.attempt, len(result.history)) == ("success", 2, 2)


def test_backup_refuses_when_box_has_only_a_legacy_image(lab: BoxLab) -> None:
    disk = make_disk(lab.root / "sda.img", MiB)
    lab.box_dir.mkdir(parents=True)
    subprocess.run(f"gzip -c {disk} > {lab.box_dir / 'sda.raw.gz'}", shell=True, check=True)
    request = lab.request("backup")
    run = lab.run(lab.arm(request), disks={"sda": disk})
    assert run.code == 1
    assert "newest legacy (legacy)" in run.stderr
    assert [i.id for i in open_store(lab.backup).list_images(lab.ip)] == ["legacy"]
