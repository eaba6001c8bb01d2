"""A disk read error in the middle of a backup: the attempt fails, no image is committed, and
the images taken before are intact.

The read error is real, not simulated: the disk is a 4 GiB sparse file that the test truncates
to 3 GiB while the service is reading it (as soon as the first new chunk reaches the store).
The disk then ends 1 GiB early, which the service reports as a read error at that offset.
Reading 3 GiB of holes takes seconds, the truncation milliseconds after the first chunk, so
the timing has a margin of about two orders of magnitude.
"""

import os
import subprocess
import time
from pathlib import Path

import pytest

from onbox.imaging.verify import verify_images
from onbox.store import open_store
from tests.service.lab import BoxLab, make_disk, service_command

MiB = 1 << 20
GiB = 1 << 30


def chunk_files(backup: Path) -> set[Path]:
    return set((backup / "store" / "chunks").rglob("*.zst"))


@pytest.mark.slow
def test_read_error_mid_backup_fails_and_keeps_earlier_images(lab: BoxLab) -> None:
    disk = make_disk(lab.root / "sda.img", 4 * MiB, seed=1)
    first = lab.request("backup")
    assert lab.run(lab.arm(first), disks={"sda": disk}).code == 0
    earlier = open_store(lab.backup).list_images(lab.ip)
    assert len(earlier) == 1
    known_chunks = chunk_files(lab.backup)

    # Other content at the start (new chunks), then 4 GiB of holes.
    make_disk(disk, 8 * MiB, seed=2)
    os.truncate(disk, 4 * GiB)
    request = lab.request("backup-again", token="second")
    argv = [*service_command(), "--no-reboot", "--retry-pause", "0", "--ip", lab.ip]
    argv += ["--tftp-root", str(lab.tftp), "--backup-root", str(lab.backup)]
    argv += ["--cmdline", lab.arm(request), "--disk", f"sda={disk}"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not chunk_files(lab.backup) - known_chunks:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.005)
        os.truncate(disk, 3 * GiB)  # the disk goes bad 1 GiB before its end
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 1, stdout + stderr
    assert f"disk ended at byte {3 * GiB} of {4 * GiB}" in stderr

    result = lab.result(request)
    assert (result.outcome, result.attempt, result.image_id) == ("failure", 1, None)
    assert result.error is not None and "reading disk sda failed" in result.error
    assert lab.config.exists()  # kept: the box retries after the pause
    assert "reading disk sda failed" in lab.global_log()

    store = open_store(lab.backup)
    assert store.list_images(lab.ip) == earlier  # no new image, the old one still listed
    report = verify_images(store, lab.ip)
    assert report.ok and report.images == [(lab.ip, earlier[0].id)]
