"""Controller and on-box service, the whole loop: arm → maintenance boot → observed done."""

import hashlib
from pathlib import Path

import pytest

from tests.loop.conftest import Loop
from tests.service.lab import make_disk

MiB = 1 << 20


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def arm(loop: Loop, action: str, *, max_attempts: int = 3, extra: str = "") -> None:
    loop.want(action, max_attempts=max_attempts, extra=extra)
    done = loop.reconcile()
    assert done.code == 0, done.stderr
    assert loop.config.exists()
    assert loop.status()["state"] == "armed"


def assert_done(loop: Loop) -> None:
    dry = loop.reconcile("--dry-run")
    assert dry.code == 0, dry.stdout + dry.stderr
    assert not loop.config.exists()
    box = loop.status()
    assert box["state"] == "done", box
    assert box["last_result"]["outcome"] == "success"


@pytest.mark.slow
def test_refresh_info_loop(loop: Loop, tmp_path: Path) -> None:
    disk = make_disk(tmp_path / "sda.img", 2 * MiB)
    arm(loop, "refresh-info")
    boot = loop.boot(disk)
    assert boot.code == 0, boot.stderr
    assert (loop.backup / loop.ip / "testbox-info.txt").exists()
    assert_done(loop)


def scramble(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(size // 4)
        f.write(b"\x5a" * (size // 2))


@pytest.mark.slow
def test_backup_then_restore_onto_a_scrambled_disk(loop: Loop, tmp_path: Path) -> None:
    disk = make_disk(tmp_path / "sda.img", 6 * MiB)
    original = sha(disk)

    arm(loop, "backup")
    boot = loop.boot(disk)
    assert boot.code == 0, boot.stderr
    assert_done(loop)
    box = loop.status()
    assert len(box["images"]) == 1
    image_id = box["images"][0]["id"]

    scramble(disk)
    assert sha(disk) != original
    arm(loop, "restore", extra=f", image: {image_id}")
    boot = loop.boot(disk)
    assert boot.code == 0, boot.stderr
    assert sha(disk) == original  # byte-identical after the restore
    assert_done(loop)


@pytest.mark.slow
def test_failing_request_is_retried_then_stalled(loop: Loop, tmp_path: Path) -> None:
    """A restore of a box without images fails on every boot: the config stays for the
    retries; after max_attempts the controller disarms it and reports the box stalled."""
    disk = make_disk(tmp_path / "sda.img", MiB)
    before = sha(disk)
    arm(loop, "restore", max_attempts=2)

    boot = loop.boot(disk)
    assert boot.code == 1
    assert "has no images" in boot.stderr
    assert loop.reconcile("--dry-run").code == 0  # still armed: nothing to change
    box = loop.status()
    assert box["state"] == "failed", box
    assert loop.config.exists()

    boot = loop.boot(disk)  # the retry boot
    assert boot.code == 1
    assert loop.reconcile("--dry-run").code == 2  # the attempt limit is reached: disarm
    done = loop.reconcile()
    assert done.code == 0, done.stderr
    assert not loop.config.exists()
    box = loop.status()
    assert box["state"] == "stalled", box
    assert box["last_result"]["attempt"] == 2
    assert loop.reconcile("--dry-run").code == 0
    assert sha(disk) == before
