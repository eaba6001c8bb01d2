"""Only one run changes the shares at a time: a lock file on the backup share (SPEC §5).

The lock is `<backup>/testboxctl.lock`, created with O_CREAT|O_EXCL (atomic on local file
systems and on NFSv3+), holding JSON that names the holder: host, pid, time, command.

- Held by a process that no longer exists on this host (a killed CI job): taken over, with a
  warning naming the dead holder.
- Held by a live process, or from another host (whose pids we cannot check): wait up to
  `timeout` seconds, then LockHeld naming the holder.
- Unreadable lock content (a crash between create and write): treated as held by an unknown
  holder; `testboxctl unlock` breaks it on purpose.
The lock is released (the file removed) only if it still names this process.
"""

import contextlib
import json
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from controller.errors import LockHeld
from onbox.atomic import fsync_dir, remove_durably
from schema.layout import LOCK_FILE

DEFAULT_LOCK_TIMEOUT = 30.0


@dataclass(frozen=True)
class LockHolder:
    host: str
    pid: int
    time: str
    command: str

    def describe(self) -> str:
        return f"{self.command!r} pid {self.pid} on host {self.host} since {self.time}"


def lock_path(backup: Path) -> Path:
    return backup / LOCK_FILE


def _read(path: Path) -> LockHolder | None:
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"unreadable lock file {path}: {exc}") from None
    try:
        return LockHolder(
            str(data["host"]), int(data["pid"]), str(data["time"]), str(data["command"])
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"unreadable lock file {path}: missing {exc}") from None


def read_holder(backup: Path) -> LockHolder | None:
    """The current holder; None when unlocked. Raises ValueError for unreadable content."""
    return _read(lock_path(backup))


def _remove_stale(path: Path, stale: LockHolder) -> None:
    """Remove the lock only if it is still `stale`'s, even with two runs taking over at once.

    The file is first renamed aside (atomic: of two runs, one gets it); if what was renamed
    turns out not to be the stale lock (another run took over in between), it is put back with
    link(), which never replaces a lock created meanwhile.
    """
    aside = path.with_name(f"{path.name}.stale-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    try:
        moved: LockHolder | None = _read(aside)
    except ValueError:
        moved = None
    if moved != stale:
        with contextlib.suppress(FileExistsError):
            os.link(aside, path)
    remove_durably(aside)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _try_create(path: Path, me: LockHolder) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    try:
        os.write(fd, (json.dumps(asdict(me)) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(path.parent)
    return True


def _me(command: str) -> LockHolder:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return LockHolder(socket.gethostname(), os.getpid(), now, command)


def acquire(
    backup: Path,
    command: str,
    *,
    timeout: float = DEFAULT_LOCK_TIMEOUT,
    warn: Callable[[str], None] = lambda _msg: None,
    poll: float = 0.2,
) -> LockHolder:
    """Take the lock or raise LockHeld after `timeout` seconds."""
    path = lock_path(backup)
    me = _me(command)
    deadline = time.monotonic() + timeout
    while True:
        if _try_create(path, me):
            return me
        try:
            holder = read_holder(backup)
            problem = None
        except ValueError as exc:
            holder, problem = None, str(exc)
        if holder is not None and holder.host == me.host and not _alive(holder.pid):
            warn(f"taking over a stale lock: {holder.describe()} is no longer running")
            _remove_stale(path, holder)
            continue
        if holder is None and problem is None:
            continue  # released between our create and our read: try again at once
        if time.monotonic() >= deadline:
            who = holder.describe() if holder else problem
            raise LockHeld(
                f"the shares are locked by {who} (lock file {path}); waited {timeout:g} s. "
                "If that run is gone, break the lock with `testboxctl unlock`"
            )
        time.sleep(poll)


def release(backup: Path, me: LockHolder) -> None:
    with contextlib.suppress(ValueError):
        if read_holder(backup) == me:
            remove_durably(lock_path(backup))


@contextlib.contextmanager
def share_lock(
    backup: Path,
    command: str,
    *,
    timeout: float = DEFAULT_LOCK_TIMEOUT,
    warn: Callable[[str], None] = lambda _msg: None,
) -> Iterator[LockHolder]:
    me = acquire(backup, command, timeout=timeout, warn=warn)
    try:
        yield me
    finally:
        release(backup, me)


def break_lock(backup: Path) -> tuple[bool, str | None]:
    """Remove the lock whoever holds it: (was there one, its holder's description)."""
    try:
        holder = read_holder(backup)
        who = holder.describe() if holder else None
    except ValueError as exc:
        who = str(exc)
    return remove_durably(lock_path(backup)), who
