"""The lock on the backup share: exclusive, names its holder, stale same-host locks taken over."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from controller.errors import LockHeld
from controller.io.lock import acquire, break_lock, read_holder, release, share_lock
from schema.layout import LOCK_FILE


def holder_file(backup: Path, host: str, pid: int) -> Path:
    path = backup / LOCK_FILE
    path.write_text(json.dumps({"host": host, "pid": pid, "time": "t", "command": "other"}))
    return path


def dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout)


def test_lock_names_holder_and_is_released(tmp_path: Path) -> None:
    with share_lock(tmp_path, "testboxctl reconcile") as me:
        holder = read_holder(tmp_path)
        assert holder == me
        assert (holder.host, holder.pid) == (socket.gethostname(), os.getpid())
        assert holder.command == "testboxctl reconcile"
        assert (tmp_path / LOCK_FILE).stat().st_mode & 0o777 == 0o644
        with pytest.raises(LockHeld, match=f"pid {os.getpid()}"):
            acquire(tmp_path, "second run", timeout=0.2, poll=0.05)
    assert not (tmp_path / LOCK_FILE).exists()


def test_other_host_is_never_taken_over(tmp_path: Path) -> None:
    holder_file(tmp_path, "elsewhere", dead_pid())
    with pytest.raises(LockHeld, match="on host elsewhere"):
        acquire(tmp_path, "run", timeout=0.2, poll=0.05)


def test_dead_holder_on_this_host_is_taken_over_with_warning(tmp_path: Path) -> None:
    pid = dead_pid()
    holder_file(tmp_path, socket.gethostname(), pid)
    warnings: list[str] = []
    me = acquire(tmp_path, "run", timeout=0, warn=warnings.append)
    assert read_holder(tmp_path) == me
    assert len(warnings) == 1 and f"pid {pid}" in warnings[0]


def test_unreadable_lock_waits_then_names_the_file(tmp_path: Path) -> None:
    (tmp_path / LOCK_FILE).write_text("")
    with pytest.raises(LockHeld, match="unreadable lock file"):
        acquire(tmp_path, "run", timeout=0.1, poll=0.05)


def test_release_leaves_someone_elses_lock(tmp_path: Path) -> None:
    me = acquire(tmp_path, "run", timeout=0)
    holder_file(tmp_path, "elsewhere", 7)  # broken and re-taken by another run meanwhile
    release(tmp_path, me)
    assert (tmp_path / LOCK_FILE).exists()


def test_break_lock(tmp_path: Path) -> None:
    assert break_lock(tmp_path) == (False, None)
    holder_file(tmp_path, "elsewhere", 7)
    removed, who = break_lock(tmp_path)
    assert removed and who is not None and "elsewhere" in who


@pytest.mark.slow
def test_many_runs_taking_over_one_stale_lock_at_once_one_wins(tmp_path: Path) -> None:
    """Processes race for the same dead holder's lock: exactly one holds it at any time."""
    holder_file(tmp_path, socket.gethostname(), dead_pid())
    script = (
        "import sys, time, os\n"
        "from pathlib import Path\n"
        "from controller.io.lock import share_lock\n"
        "root = Path(sys.argv[1])\n"
        "with share_lock(root, 'race', timeout=30, warn=lambda m: None):\n"
        "    marker = root / 'inside'\n"
        "    fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)\n"  # fails if two inside
        "    time.sleep(0.05)\n"
        "    os.close(fd); os.unlink(marker)\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stderr=subprocess.PIPE)
        for _ in range(6)
    ]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, errors
    assert not (tmp_path / LOCK_FILE).exists()
    assert not list(tmp_path.glob(f"{LOCK_FILE}.stale-*"))
