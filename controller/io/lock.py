"""Only one run changes the shares at a time: a lock file on the backup share (contract §5).

The lock is `<backup>/testboxctl.lock`, holding JSON that names the holder: host, pid, time,
command. It is created with `Share.create_exclusive` (content written to a temp file, then
hard-linked into place: atomic on local file systems and on NFSv3+, and a full or read-only
share never leaves an empty lock behind that would block every later run).

- Held by a process that no longer exists on this host (a killed CI job): taken over, with a
  warning naming the dead holder.
- Held by a live process, or from another host (whose pids we cannot check): wait up to
  `timeout` seconds, then LockHeld naming the holder.
- Unreadable lock content (garbage, a pid that cannot be one, a FIFO, a link, a directory):
  treated as held by an unknown holder, named by its problem; `testboxctl unlock` breaks it on
  purpose. Every read is bounded and never opens a FIFO, so neither waiting nor `unlock` hangs.
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

from controller.errors import ControllerError, LockHeld
from onbox.shareio import Share, ShareAccessError, ShareMissing
from schema.layout import LOCK_FILE

DEFAULT_LOCK_TIMEOUT = 30.0
_LOCK_LIMIT = 4096  # a lock record is ~150 bytes
# Linux's largest pid_max (PID_MAX_LIMIT on 64-bit): a larger number cannot name a process.
_PID_MAX = 1 << 22


@dataclass(frozen=True)
class LockHolder:
    host: str
    pid: int
    time: str
    command: str

    def describe(self) -> str:
        return f"{self.command!r} pid {self.pid} on host {self.host} since {self.time}"


class UnreadableLock(ValueError):
    """The lock file exists but does not name a holder (the message says why, naming the file)."""


def lock_path(backup: Path) -> Path:
    return backup / LOCK_FILE


def _open(backup: Path) -> Share:
    try:
        return Share(backup)
    except ShareAccessError as exc:
        raise ControllerError(f"{exc.path}: {exc.problem}; cannot take the share lock") from None


def _parse(data: bytes, where: str) -> LockHolder:
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        raise UnreadableLock(f"unreadable lock file {where}: not a lock record") from None
    if not isinstance(doc, dict):
        raise UnreadableLock(f"unreadable lock file {where}: not a lock record")
    host, pid, when, command = (doc.get(k) for k in ("host", "pid", "time", "command"))
    if not all(isinstance(v, str) for v in (host, when, command)):
        raise UnreadableLock(f"unreadable lock file {where}: host, time or command missing")
    if not isinstance(pid, int) or isinstance(pid, bool) or not 0 < pid < _PID_MAX:
        raise UnreadableLock(
            f"unreadable lock file {where}: pid {str(pid)[:30]} is not a process id"
        )
    return LockHolder(str(host)[:200], pid, str(when)[:64], str(command)[:200])


def _read(share: Share, name: str) -> LockHolder | None:
    try:
        data = share.read_bytes(name, _LOCK_LIMIT)
    except ShareMissing:
        return None
    except ShareAccessError as exc:
        raise UnreadableLock(f"unreadable lock file {exc.path}: {exc.problem}") from None
    return _parse(data, share.path(name))


def read_holder(backup: Path) -> LockHolder | None:
    """The current holder; None when unlocked. Raises UnreadableLock (a ValueError)."""
    with _open(backup) as share:
        return _read(share, LOCK_FILE)


def _remove_stale(share: Share, stale: LockHolder) -> None:
    """Remove the lock only if it is still `stale`'s, even with two runs taking over at once.

    The file is first renamed aside (atomic: of two runs, one gets it); if what was renamed
    turns out not to be the stale lock (another run took over in between), it is put back with
    link(), which never replaces a lock created meanwhile.
    """
    aside = f"{LOCK_FILE}.stale-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        share.rename(LOCK_FILE, aside)
    except ShareMissing:
        return
    try:
        moved: LockHolder | None = _read(share, aside)
    except UnreadableLock:
        moved = None
    if moved != stale:
        share.rename(aside, LOCK_FILE, replace=False)
    share.remove(aside, allow_link=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except (OverflowError, OSError):
        return False  # cannot be a process of this host
    return True


def _me(command: str) -> LockHolder:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return LockHolder(socket.gethostname(), os.getpid(), now, command)


def _create(share: Share, me: LockHolder) -> bool:
    try:
        return share.create_exclusive(LOCK_FILE, json.dumps(asdict(me)) + "\n")
    except ShareAccessError as exc:
        raise ControllerError(f"{exc.path}: cannot take the share lock: {exc.problem}") from None


def acquire(
    backup: Path,
    command: str,
    *,
    timeout: float = DEFAULT_LOCK_TIMEOUT,
    warn: Callable[[str], None] = lambda _msg: None,
    poll: float = 0.2,
) -> LockHolder:
    """Take the lock or raise LockHeld after `timeout` seconds."""
    me = _me(command)
    deadline = time.monotonic() + timeout
    with _open(backup) as share:
        while True:
            if _create(share, me):
                return me
            try:
                holder = _read(share, LOCK_FILE)
                problem = None
            except UnreadableLock as exc:
                holder, problem = None, str(exc)
            if holder is not None and holder.host == me.host and not _alive(holder.pid):
                warn(f"taking over a stale lock: {holder.describe()} is no longer running")
                _remove_stale(share, holder)
                continue
            if holder is None and problem is None:
                continue  # released between our create and our read: try again at once
            if time.monotonic() >= deadline:
                who = holder.describe() if holder else problem
                raise LockHeld(
                    f"the shares are locked by {who} (lock file {lock_path(backup)}); waited "
                    f"{timeout:g} s. If that run is gone, break the lock with `testboxctl unlock`"
                )
            time.sleep(poll)


def release(backup: Path, me: LockHolder) -> None:
    with (
        contextlib.suppress(UnreadableLock, ShareAccessError, ControllerError),
        _open(backup) as share,
    ):
        if _read(share, LOCK_FILE) == me:
            share.remove(LOCK_FILE)


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
    """Remove the lock whoever holds it: (was there one, its holder's description).

    Whatever the lock file is (garbage, a link, a FIFO) it is unlinked, never opened; only a
    directory under that name is refused (remove it by hand).
    """
    with _open(backup) as share:
        try:
            holder = _read(share, LOCK_FILE)
            who = holder.describe() if holder else None
        except UnreadableLock as exc:
            who = str(exc)
        try:
            return share.remove(LOCK_FILE, allow_link=True, allow_special=True), who
        except ShareAccessError as exc:
            raise ControllerError(f"{exc.path}: {exc.problem}") from None
