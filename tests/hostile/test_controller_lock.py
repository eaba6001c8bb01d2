"""The share lock under hostile or broken conditions (issue 8): no hang, no 0-byte lock, one line.

A FIFO, a link, a directory, garbage or a pid that cannot be one as the lock file; a full or a
read-only backup share while taking the lock. `reconcile --lock-timeout` gives up in time with
one line naming the lock file and its problem, `unlock` never hangs and breaks what can be
broken, nothing outside the shares changes, and a full share leaves no lock behind.
"""

import json
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from schema.layout import LOCK_FILE
from tests.cli.runner import run_cli
from tests.hostile.controller_lab import ControllerLab


def _lock(lab: ControllerLab) -> Path:
    return lab.shares.backup / LOCK_FILE


def _holder(pid: object) -> bytes:
    doc = {"host": socket.gethostname(), "pid": pid, "time": "t", "command": "x"}
    return json.dumps(doc).encode()


LOCKS: dict[str, tuple[Callable[[ControllerLab], None], str]] = {
    "fifo": (lambda lab: lab.fifo(_lock(lab)), "is not a regular file"),
    "link": (lambda lab: lab.link(_lock(lab), lab.outside / "request.json"), "symbolic link"),
    "garbage": (lambda lab: lab.write(_lock(lab), b"\x00\xffgarbage"), "not a lock record"),
    "empty": (lambda lab: lab.write(_lock(lab), b""), "not a lock record"),
    "huge-pid": (lambda lab: lab.write(_lock(lab), _holder(10**20)), "is not a process id"),
    "negative-pid": (lambda lab: lab.write(_lock(lab), _holder(-1)), "is not a process id"),
    "nested": (lambda lab: lab.write(_lock(lab), b"[" * 100_000), "larger than 4096 bytes"),
    "deep": (lambda lab: lab.write(_lock(lab), b"[" * 4000), "not a lock record"),
}


@pytest.mark.parametrize("case", sorted(LOCKS))
def test_hostile_lock_file_is_one_line_and_unlock_breaks_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    lab = ControllerLab(tmp_path)
    build, problem = LOCKS[case]
    build(lab)
    started = time.monotonic()
    code, out, err = lab.cli(capsys, "reconcile", "-f", str(lab.desired), "--lock-timeout", "0.3")
    assert time.monotonic() - started < 10
    assert code == 1 and out == ""
    [line] = err.strip().splitlines()
    assert line.startswith("testboxctl: error: the shares are locked by unreadable lock file ")
    assert problem in line and str(_lock(lab)) in line
    assert not lab.box("10.9.9.10").exists()  # nothing changed

    code, out, err = lab.cli(capsys, "unlock", "--backup-root", str(lab.shares.backup))
    assert code == 0, err
    assert out.startswith("lock broken (was held by unreadable lock file")
    assert not os.path.lexists(_lock(lab))
    lab.outside_unchanged()
    assert lab.reconcile(capsys)[0] == 0


def test_a_directory_as_lock_is_refused_by_unlock_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lab = ControllerLab(tmp_path)
    lab.directory(_lock(lab))
    code, _, err = lab.cli(capsys, "reconcile", "-f", str(lab.desired), "--lock-timeout", "0.2")
    assert code == 1 and "is a directory where a file belongs" in err
    code, _, err = lab.cli(capsys, "unlock", "--backup-root", str(lab.shares.backup))
    assert code == 1
    assert err.strip().splitlines() == [
        f"testboxctl: error: {_lock(lab)}: is a directory where a file belongs; not removed"
    ]


def test_a_fifo_lock_through_the_real_entry_point_never_hangs(tmp_path: Path) -> None:
    lab = ControllerLab(tmp_path)
    lab.fifo(_lock(lab))
    done = run_cli("reconcile", "-f", lab.desired, "--lock-timeout", "0.2", timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    done = run_cli("unlock", "--backup-root", lab.shares.backup, timeout=60)
    assert done.returncode == 0 and not os.path.lexists(_lock(lab))


@pytest.fixture
def small_share(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB, 400-inode tmpfs as the backup share (root only; skipped elsewhere)."""
    mount = tmp_path / "lab" / "backup"
    mount.mkdir(parents=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,nr_inodes=400", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(mount: Path) -> None:
    with (mount / "filler").open("wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    # A tmpfs has inodes left when its blocks are gone: take those too, so that even creating
    # an empty temp file fails.
    for n in range(100_000):
        try:
            (mount / f"f{n}").touch()
        except OSError:
            break


@pytest.mark.parametrize("condition", ["full", "read-only"])
def test_lock_on_a_full_or_read_only_share_is_one_line_and_leaves_no_lock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], small_share: Path, condition: str
) -> None:
    lab = ControllerLab(tmp_path)  # the lab's backup share is the small tmpfs
    assert lab.shares.backup == small_share
    if condition == "full":
        _fill(small_share)
        expected = "no space left on the share"
    else:
        subprocess.run(["mount", "-o", "remount,ro", str(small_share)], check=True)
        expected = "the share is read-only"
    code, out, err = lab.reconcile(capsys)
    assert code == 1 and out == ""
    [line] = err.strip().splitlines()
    assert line.startswith("testboxctl: error: ") and expected in line and LOCK_FILE in line
    assert not os.path.lexists(_lock(lab))  # no 0-byte lock blocking every later run
    assert not [p for p in small_share.iterdir() if p.name.startswith(f".{LOCK_FILE}")]
