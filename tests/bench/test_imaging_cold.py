"""The cold-store part of the imaging benchmark still runs and still measures what it claims.

Run small (96 MiB), once: the whole `testbox-maintenance` backup and restore go through a share
that is remounted before each restore, the restore is byte-identical (the part checks it with
cmp), and the loop device's counter saw the image's stored bytes read once, not twice.
"""

import os
import shutil
from pathlib import Path

import pytest

from benchmarks._imaging_cold import report_cold, run_cold
from benchmarks._imaging_disk import make_disk

REQUIRED = os.environ.get("TESTBOX_E2E_REQUIRED") == "1"
MiB = 1 << 20
SIZE = 96 * MiB  # three of the synthetic disk's 32 MiB segments: zeros, system files, zeros


@pytest.mark.slow
def test_cold_share_restores_read_the_stored_bytes_once(tmp_path: Path) -> None:
    if (os.geteuid() != 0 or shutil.which("losetup") is None) and not REQUIRED:
        pytest.skip("needs root and losetup (loop devices)")
    disk = tmp_path / "disk.img"
    make_disk(disk, SIZE)
    r = run_cold(SIZE, disk, tmp_path, repeat=1)
    assert "skipped" not in r, r
    stored = r["stored_bytes"]
    assert 0 < stored < SIZE
    for name in ("engine", "service"):
        read = r["restore"][name]["share_bytes_read"]
        # Every chunk once, plus the records and the filesystem's own metadata.
        assert stored <= read <= 1.05 * stored + 256 * 1024, (name, read, stored)
    # The baselines read their compressed file from the same cold share.
    assert r["restore"]["gunzipdd"]["share_bytes_read"] >= r["gzip_bytes"]
    # The disk floor reads every stored chunk and writes what a restore writes.
    assert r["restore"]["floor"]["share_bytes_read"] >= stored
    assert 0 < r["floor_bytes_written"] <= SIZE
    assert "x gunzip|dd" in report_cold(r, SIZE)
    assert "x the disk floor" in report_cold(r, SIZE)
    assert not os.path.ismount(tmp_path / "share")  # cleaned up: unmounted, loop detached
