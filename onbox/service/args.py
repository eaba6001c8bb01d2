"""The command line of `testbox-maintenance` (contract §5), parsed into one frozen `Options`.

argparse rather than typer: the service starts on every maintenance boot and should not pay for
importing a CLI framework it does not need. Usage errors exit 1 like every other failure
(contract §5: exit 0 on success, 1 otherwise), not argparse's customary 2.
"""

import argparse
import ipaddress
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from schema.types import DISK_NAME_PATTERN

DEFAULT_CMDLINE_FILE = Path("/proc/cmdline")
DEFAULT_TFTP_ROOT = Path("/mnt/testbox-tftp")
DEFAULT_BACKUP_ROOT = Path("/mnt/testbox-backup")
DEFAULT_RETRY_PAUSE = 300.0
# How long to wait for a listed disk to appear (its driver is loaded by udev's coldplug after
# the switch to the real root; see onbox.service.disks.wait_for_devices).
DEFAULT_DISK_WAIT = 120.0

# Same whole-disk names as schema.types.DiskName: a name also becomes part of image records.
DISK_NAME = re.compile(DISK_NAME_PATTERN)


@dataclass(frozen=True)
class Options:
    cmdline: str | None  # the text itself; None: read DEFAULT_CMDLINE_FILE
    tftp_root: Path
    backup_root: Path
    ip: str | None  # None: the first non-loopback IPv4 address
    disk_map: dict[str, Path] = field(default_factory=dict)
    no_reboot: bool = False
    retry_pause: float = DEFAULT_RETRY_PAUSE
    disk_wait: float = DEFAULT_DISK_WAIT


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(1, f"testbox-maintenance: error: {message}\n")


def _disk_mapping(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    if not DISK_NAME.fullmatch(name):
        raise argparse.ArgumentTypeError(
            f"{name!r} is not a whole-disk name (sdX, hdX, vdX, xvdX, nvmeNnM)"
        )
    return name, Path(path)


def _pause(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value < 0 or math.isnan(value):
        raise argparse.ArgumentTypeError(f"must be zero or more seconds: {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="testbox-maintenance",
        description="Carry out the maintenance request this box was PXE-booted for "
        "(backup, backup-again, restore, refresh-info, rescue), record the result on the "
        "backup share, remove the box's PXE config on success and reboot.",
    )
    p.add_argument(
        "--cmdline",
        metavar="TEXT",
        help="kernel command line to read the action and request id from "
        f"(default: the contents of {DEFAULT_CMDLINE_FILE})",
    )
    p.add_argument("--tftp-root", metavar="P", type=Path, default=DEFAULT_TFTP_ROOT)
    p.add_argument("--backup-root", metavar="P", type=Path, default=DEFAULT_BACKUP_ROOT)
    p.add_argument("--ip", metavar="IP", help="default: the first non-loopback IPv4 address")
    p.add_argument(
        "--disk",
        metavar="NAME=PATH",
        action="append",
        type=_disk_mapping,
        default=[],
        help="image PATH (a file or device) as disk NAME instead of /dev/NAME; repeatable",
    )
    p.add_argument(
        "--no-reboot",
        action="store_true",
        help="neither pause nor reboot at the end (for tests and manual runs)",
    )
    p.add_argument(
        "--retry-pause",
        metavar="SECONDS",
        type=_pause,
        default=DEFAULT_RETRY_PAUSE,
        help="pause after a failure before rebooting to retry (default: %(default)s)",
    )
    p.add_argument(
        "--disk-wait",
        metavar="SECONDS",
        type=_pause,
        default=DEFAULT_DISK_WAIT,
        help="wait at most this long for a listed disk to appear (default: %(default)s)",
    )
    return p


def parse_args(argv: Sequence[str] | None = None) -> Options:
    ns = _parser().parse_args(argv)
    disk_map: dict[str, Path] = {}
    for name, path in ns.disk:
        if name in disk_map:
            _parser().error(f"--disk {name} given twice")
        disk_map[name] = path
    if ns.ip is not None:
        try:
            if str(ipaddress.IPv4Address(ns.ip)) != ns.ip:
                raise ValueError
        except ValueError:
            _parser().error(f"--ip: not a dotted-decimal IPv4 address: {ns.ip!r}")
    return Options(
        cmdline=ns.cmdline,
        tftp_root=ns.tftp_root,
        backup_root=ns.backup_root,
        ip=ns.ip,
        disk_map=disk_map,
        no_reboot=ns.no_reboot,
        retry_pause=ns.retry_pause,
        disk_wait=ns.disk_wait,
    )
