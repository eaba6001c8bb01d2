"""Progress reaches a terminal as one redrawn line and a log as throttled plain lines."""

import io
from pathlib import Path

from onbox.imaging.backup import backup_disks
from onbox.imaging.progress import LogProgress, ProgressEvent, TerminalProgress, Tracker, describe
from onbox.imaging.restore import restore_image
from onbox.store import MemoryStore

GIB = 1024**3


def test_describe() -> None:
    event = ProgressEvent("backup sda", GIB, 4 * GIB, elapsed=2.0)
    assert describe(event) == "backup sda: 1.0 GiB of 4.0 GiB (25%), 536.9 MB/s, ETA 6s"
    done = ProgressEvent("restore sda", 4 * GIB, 4 * GIB, elapsed=80.0, finished=True)
    assert describe(done).endswith("done in 1m20s")
    assert describe(ProgressEvent("import sda", 10, None, 1.0)) == "import sda: 10 B, 0.0 MB/s"


def test_log_lines_are_throttled() -> None:
    lines: list[str] = []
    log = LogProgress(lines.append, interval=30)
    for t in range(0, 100, 5):
        log(ProgressEvent("backup sda", t, 100, elapsed=float(t)))
    log(ProgressEvent("backup sda", 100, 100, elapsed=100.0, finished=True))
    assert len(lines) == 5 and "done in" in lines[-1]


def test_tracker_and_terminal() -> None:
    out = io.StringIO()
    tracker = Tracker("verify", 100, TerminalProgress(out), interval=0)
    tracker.advance(40)
    tracker.advance(60)
    tracker.finish()
    text = out.getvalue()
    assert text.count("\r") == 3 and text.endswith("\n") and "100 B of 100 B (100%)" in text


def test_backup_and_restore_report_progress(tmp_path: Path) -> None:
    store = MemoryStore()
    disk = tmp_path / "d.img"
    disk.write_bytes(b"x" * 10_000 + bytes(5_000))
    events: list[ProgressEvent] = []

    def record(event: ProgressEvent) -> None:
        events.append(event)

    backup_disks(store, "10.0.0.1", {"sda": disk}, chunk_size=4096, progress=record)
    target = tmp_path / "t.img"
    target.write_bytes(bytes(15_000))
    restore_image(store, "10.0.0.1", "latest", {"sda": target}, progress=record)
    finished = [e for e in events if e.finished]
    assert [(e.task, e.done, e.total) for e in finished] == [
        ("backup sda", 15_000, 15_000),
        ("restore sda", 15_000, 15_000),
    ]
