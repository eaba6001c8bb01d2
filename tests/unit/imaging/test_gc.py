"""gc removes exactly the unreferenced chunks, and never one a running backup needs."""

import random
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from onbox.imaging.backup import DiskStream, backup_disks, backup_streams
from onbox.imaging.gc import collect_garbage
from onbox.imaging.restore import restore_image
from onbox.imaging.verify import verify_images
from onbox.store import ImageStore
from onbox.store.records import DiskManifest
from tests.unit.imaging.conftest import CS, IP, write_disk

N = 12  # chunks per disk in the interleaving tests


def chunk_ids(store: ImageStore) -> set[str]:
    return {s.id for s in store.chunk_stats()}


def test_removes_only_unreferenced(store: ImageStore, tmp_path: Path) -> None:
    rng = random.Random(1)
    shared = rng.randbytes(CS)
    a = backup_disks(
        store, IP, {"sda": write_disk(tmp_path / "a", shared + rng.randbytes(CS))}, chunk_size=CS
    )
    b = backup_disks(
        store, IP, {"sda": write_disk(tmp_path / "b", shared + rng.randbytes(CS))}, chunk_size=CS
    )
    assert len(chunk_ids(store)) == 3
    store.delete_image(IP, a.image_id)

    dry = collect_garbage(store, dry_run=True, grace=0)
    assert len(dry.garbage) == 1 and len(chunk_ids(store)) == 3

    young = collect_garbage(store, dry_run=False, grace=3600)
    assert young.removed == 0 and young.young == 1

    done = collect_garbage(store, dry_run=False, grace=0)
    assert done.removed == 1 and done.bytes_freed > 0
    assert chunk_ids(store) == store.referenced_chunks()
    assert verify_images(store).ok
    assert [i.id for i in store.list_images(IP)] == [b.image_id]


def test_removes_interrupted_backups_and_stale_leases(store: ImageStore) -> None:
    store.write_manifest(
        IP, "20260101T000000Z-000000", DiskManifest(disk="sda", size=0, chunk_size=CS, chunks=[])
    )
    lease = store.open_lease("20260101T000000Z-000000")
    lease.add("ab" * 32)
    report = collect_garbage(store, dry_run=False, grace=0, lease_stale_after=-1)
    assert report.pending_removed == [f"{IP}/20260101T000000Z-000000"]
    assert report.stale_leases == ["20260101T000000Z-000000"]
    assert store.pending_images() == []


class GatedDisk:
    """A disk whose chunks are read only when the test lets them through."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.gate = threading.Semaphore(0)

    def read(self, n: int) -> bytes:
        if self.pos < len(self.data):
            assert self.gate.acquire(timeout=30), "test forgot to let a chunk through"
        out = self.data[self.pos : self.pos + n]
        self.pos += len(out)
        return out


PHASES = ["listed", "marked", "trashed", "rescued"]


@pytest.mark.parametrize("start", [0, 1, N // 2, N])  # chunks read before gc starts
@pytest.mark.parametrize("phase", PHASES)  # gc phase at which the backup runs on
@pytest.mark.parametrize("finish", [True, False])  # backup completes there, or only halfway
def test_gc_interleaved_with_backup_loses_nothing(
    store: ImageStore, tmp_path: Path, start: int, phase: str, finish: bool
) -> None:
    rng = random.Random(start * 100 + PHASES.index(phase))
    data = b"".join(rng.randbytes(CS) for _ in range(N))
    # An earlier image had exactly these chunks and was deleted (retention): every chunk is
    # unreferenced garbage, old enough (grace 0), and the new backup will dedup against it.
    old = backup_disks(
        store, "10.0.0.9", {"sda": write_disk(tmp_path / "old", data)}, chunk_size=CS
    )
    store.delete_image("10.0.0.9", old.image_id)

    disk = GatedDisk(data)
    recorded = threading.Semaphore(0)
    result: dict[str, object] = {}

    def run_backup() -> None:
        try:
            result["report"] = backup_streams(
                store,
                IP,
                {"sda": DiskStream(disk.read, len(data))},
                chunk_size=CS,
                workers=2,
                on_chunk=lambda _d, _i: recorded.release(),
            )
        except BaseException as exc:  # surfaced by the assertion below
            result["error"] = exc

    def let_through(chunks: int) -> None:
        for _ in range(chunks):
            disk.gate.release()

    def wait_recorded(chunks: int) -> None:
        for _ in range(chunks):
            assert recorded.acquire(timeout=30)

    thread = threading.Thread(target=run_backup)
    thread.start()
    # The reader runs ahead of the recorded chunks by the in-flight window; count reads instead.
    let_through(start)
    wait_recorded(max(0, start - 4))

    def hook(at: str) -> None:
        if at != phase:
            return
        if finish:
            let_through(N - start + 1)
            thread.join(timeout=30)
        else:
            let_through((N - start) // 2)

    report = collect_garbage(store, dry_run=False, grace=0, hook=hook)
    if phase == "marked" and finish:
        # The backup deduplicated against every chunk gc had marked and committed before the
        # sweep: all of them went to the trash and came back (step 3 at work).
        assert len(report.garbage) == (N if start == 0 else len(report.garbage))
        assert sorted(report.rescued) == report.garbage and report.removed == 0
    let_through(N + 1)
    thread.join(timeout=30)
    assert "error" not in result, result.get("error")
    assert verify_images(store).ok
    target = write_disk(tmp_path / "target", bytes(len(data)))
    restore_image(store, IP, "latest", {"sda": target})
    assert target.read_bytes() == data


def test_gc_loop_against_concurrent_backups(store: ImageStore, tmp_path: Path) -> None:
    """Many backups of overlapping disks while gc runs back to back with no grace period."""
    rng = random.Random(5)
    pool = [rng.randbytes(CS) for _ in range(16)]
    disks = []
    for i in range(6):
        content = b"".join(rng.choice(pool) for _ in range(10))
        disks.append((f"10.0.1.{i}", content, write_disk(tmp_path / f"d{i}", content)))
    stop = threading.Event()
    errors: list[BaseException] = []
    gc_runs = 0

    def gc_loop() -> None:
        nonlocal gc_runs
        # A millisecond between runs: on the memory backend a gc run never releases the GIL,
        # and back to back without a pause it starved the backups (138 s instead of ~1 s).
        while not stop.wait(0.001):
            try:
                collect_garbage(store, dry_run=False, grace=0)
                gc_runs += 1
            except BaseException as exc:
                errors.append(exc)
                return

    def backups(delete: Callable[[str, str], None]) -> None:
        for _round in range(3):
            for ip, _content, path in disks:
                report = backup_disks(store, ip, {"sda": path}, chunk_size=CS, workers=2)
                # keep only the newest image, so older chunks keep becoming garbage
                for info in store.list_images(ip)[:-1]:
                    delete(ip, info.id)
                del report

    gc_thread = threading.Thread(target=gc_loop)
    gc_thread.start()
    try:
        backups(store.delete_image)
    finally:
        stop.set()
        gc_thread.join(timeout=60)
    assert not errors, errors
    assert gc_runs >= 3, gc_runs  # gc really ran beside the backups, not once before them
    report = verify_images(store)
    assert report.ok, [str(p) for p in report.problems[:3]]
    for ip, content, _path in disks:
        target = write_disk(tmp_path / f"t{ip}", bytes(len(content)))
        restore_image(store, ip, "latest", {"sda": target})
        assert target.read_bytes() == content
