"""A backup killed with SIGKILL at any moment leaves no image behind and harms none before it."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from onbox.imaging.backup import backup_disks
from onbox.imaging.gc import collect_garbage
from onbox.imaging.verify import verify_images
from onbox.store import open_store

IP = "10.0.0.5"
CS = 16 * 1024
N_CHUNKS = 640  # 10 MiB in many small chunks: many lease, write and rename steps to hit
WANTED_KILLS = 20  # runs killed before their commit
MAX_RUNS = 60

CHILD = """
import sys
from pathlib import Path
from onbox.imaging.backup import backup_disks
from onbox.store import open_store
print("ready", flush=True)
backup_disks(open_store(Path(sys.argv[1])), sys.argv[2], {"sda": Path(sys.argv[3])},
             chunk_size=int(sys.argv[4]), workers=2)
print("committed", flush=True)
"""


def child_backup(root: Path, disk: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), IP, str(disk), str(CS)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )


def disk_content(rng: random.Random) -> bytes:
    parts = []
    for _ in range(N_CHUNKS):  # zeros, text and random chunks
        kind = rng.random()
        if kind < 0.3:
            parts.append(bytes(CS))
        elif kind < 0.7:
            parts.append((b"lib%d.so " % rng.randrange(10**6)) * (CS // 12) + bytes(CS % 12))
        else:
            parts.append(rng.randbytes(CS))
    return b"".join(p[:CS].ljust(CS, b"\0") for p in parts)


@pytest.mark.slow
def test_sigkill_at_random_points(tmp_path: Path) -> None:
    rng = random.Random(2026)
    root = tmp_path / "backup"
    root.mkdir()
    store = open_store(root)
    disk = tmp_path / "sda.img"
    disk.write_bytes(disk_content(rng))
    earlier = [backup_disks(store, IP, {"sda": disk}, chunk_size=CS).image_id]

    # How long a child backup takes from "ready" (imports done) to its commit (median of 3):
    # kill delays are drawn from that span, so most kills land inside the backup.
    spans = []
    for _ in range(3):
        child = child_backup(root, disk)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        t0 = time.monotonic()
        assert child.stdout.readline().strip() == "committed"
        spans.append(time.monotonic() - t0)
        assert child.wait(timeout=120) == 0
    duration = sorted(spans)[1]
    earlier = [i.id for i in store.list_images(IP)]

    killed = runs = 0
    while killed < WANTED_KILLS and runs < MAX_RUNS:
        runs += 1
        # Change a few chunks so each run has new chunks to write.
        with open(disk, "r+b") as f:
            for _ in range(8):
                f.seek(rng.randrange(N_CHUNKS) * CS)
                f.write(rng.randbytes(CS))
        child = child_backup(root, disk)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0, duration))
        os.kill(child.pid, signal.SIGKILL)
        code = child.wait(timeout=60)
        now_listed = [i.id for i in store.list_images(IP)]
        if code == -signal.SIGKILL and len(now_listed) == len(earlier):
            killed += 1
        # Earlier images are all still there; anything new is complete.
        assert now_listed[: len(earlier)] == earlier
        report = verify_images(store, IP)
        assert report.ok, [str(p) for p in report.problems[:3]]
        earlier = now_listed
    print(f"{killed} of {runs} runs killed before their commit; a backup takes {duration:.2f} s")
    assert killed >= WANTED_KILLS, f"only {killed} of {runs} runs were killed before their commit"

    # What the killed runs left (chunks, leases, image directories) is garbage gc can clear.
    collect_garbage(store, dry_run=False, grace=0, lease_stale_after=0)
    assert store.pending_images() == []
    assert {s.id for s in store.chunk_stats()} == store.referenced_chunks()
    assert verify_images(store).ok
