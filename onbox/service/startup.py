"""Start-up checks of a maintenance boot: who am I (IP, host name) and are the shares there.

Mirrors the seed's start of `testbox-maintenance.sh`: find the box's IP, look up its name, make
sure both NFS shares are really mounted (the `testbox-backup` marker file on the backup share,
`pxelinux.0` on the TFTP share), retrying once after a pause because early in boot the mounts
may not be up yet. Acting on an empty mount point would write logs, results and images into the
maintenance root's own directory, so a share that stays missing stops the run before any change.
"""

import contextlib
import fcntl
import ipaddress
import re
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from onbox.errors import ServiceError
from onbox.shareio import Share, ShareAccessError
from schema.layout import BACKUP_MARKER, PXELINUX_BOOTFILE

SIOCGIFADDR = 0x8915
HOSTNAME_LOOKUP_TIMEOUT = 3.0
# A long --retry-pause is meant for the failure-retry reboot; waiting for a mount is shorter.
MOUNT_RETRY_PAUSE_MAX = 30.0
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


def interface_ipv4s() -> list[tuple[str, str]]:
    """(interface, IPv4) for every interface that has one, in interface index order."""
    found: list[tuple[str, str]] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _index, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(
                    sock.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15])
                )
            except OSError:  # no IPv4 address on this interface
                continue
            found.append((name, socket.inet_ntoa(packed[20:24])))
    return found


def first_ipv4() -> str:
    for _name, ip in interface_ipv4s():
        if not ipaddress.IPv4Address(ip).is_loopback:
            return ip
    raise ServiceError("no non-loopback IPv4 address on any interface (is the network up?)")


def _reverse(ip: str) -> str:
    return socket.gethostbyaddr(ip)[0]


class HostnameLookup:
    """The box's host name by reverse lookup, started at once and waited for only when needed.

    A dead or slow DNS server must neither stall the boot nor add its timeout to every run: the
    lookup runs on a daemon thread from the start of the session (a lookup stuck in the
    resolver does not hold up the process at exit either), and `name()` waits at most until
    `timeout` seconds after the start. A restore asks at its end, for the result record, so the
    lookup overlaps the imaging; a backup asks before its info files. The name also becomes a
    file name on the backup share, so only a plain host name is accepted, else `unknown`.
    """

    def __init__(
        self,
        ip: str,
        timeout: float = HOSTNAME_LOOKUP_TIMEOUT,
        resolve: Callable[[str], str] = _reverse,
    ) -> None:
        self._deadline = time.monotonic() + timeout
        self._found: list[str] = []
        self._answer: str | None = None

        def lookup() -> None:
            with contextlib.suppress(OSError, UnicodeError):
                self._found.append(resolve(ip))

        self._thread = threading.Thread(target=lookup, name="hostname-lookup", daemon=True)
        self._thread.start()

    @property
    def answered(self) -> bool:
        """Whether `name()` has been asked (and so is fixed)."""
        return self._answer is not None

    def name(self) -> str:
        """The host name or `unknown`; the same answer every time it is asked."""
        if self._answer is None:
            self._thread.join(max(0.0, self._deadline - time.monotonic()))
            name = self._found[0] if self._found else ""
            valid = _HOST.fullmatch(name) is not None and ".." not in name
            self._answer = name if valid else "unknown"
        return self._answer


def _marker_kind(root: Path, name: str) -> str:
    """The marker's kind, looked at through the share layer (a link is a link, not a file)."""
    try:
        with Share(root) as share:
            return share.kind(name)
    except ShareAccessError:
        return "missing"


def share_problems(tftp_root: Path, backup_root: Path) -> list[str]:
    problems = []
    for root, marker, what in (
        (backup_root, BACKUP_MARKER, "backup share not mounted: marker"),
        (tftp_root, PXELINUX_BOOTFILE, "TFTP share not mounted:"),
    ):
        kind = _marker_kind(root, marker)
        if kind == "missing":
            problems.append(f"{what} {root / marker} is missing")
        elif kind != "file":
            problems.append(f"{what} {root / marker} is not a regular file ({kind})")
    return problems


def _in_fstab(mount_point: Path, fstab: Path = Path("/etc/fstab")) -> bool:
    try:
        lines = fstab.read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        fields = line.split()
        if len(fields) >= 2 and not fields[0].startswith("#") and Path(fields[1]) == mount_point:
            return True
    return False


def try_mount(mount_point: Path, say: Callable[[str], None]) -> None:
    """The seed's fstab lists the shares `noauto` (early-boot mount trouble) and the service
    mounts them itself. Only a mount point listed in /etc/fstab is attempted."""
    if not _in_fstab(mount_point):
        return
    try:
        done = subprocess.run(
            ["mount", str(mount_point)], check=False, capture_output=True, text=True, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        say(f"mount {mount_point}: {exc}")
        return
    if done.returncode != 0:
        say(f"mount {mount_point}: {done.stderr.strip() or f'exit status {done.returncode}'}")


def wait_for_shares(
    tftp_root: Path, backup_root: Path, retry_pause: float, say: Callable[[str], None]
) -> None:
    """Check both shares; if one is missing, try mounting, pause once and check again."""
    problems = share_problems(tftp_root, backup_root)
    if not problems:
        return
    for problem in problems:
        say(problem)
    for root in (tftp_root, backup_root):
        try_mount(root, say)
    pause = min(retry_pause, MOUNT_RETRY_PAUSE_MAX)
    if share_problems(tftp_root, backup_root) and pause > 0:
        say(f"waiting {pause:g} s for the shares, then checking once more")
        time.sleep(pause)
    problems = share_problems(tftp_root, backup_root)
    if problems:
        raise ServiceError("; ".join(problems))
