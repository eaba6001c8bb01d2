"""Which disks this run images, and where they are.

The seed imaged the disks listed in `<ip>/disk-devices.lst` (the controller writes it for every
armed request), else every real disk in /sys/block; a name that is not a block device is
skipped with a log line. `--disk NAME=PATH` maps a name to a file or another device (tests, and
imaging a file). When any `--disk` is given, every disk of the run must be mapped: a run that
is half mapped would read, or for a restore write, this machine's own `/dev` disks by accident.
"""

import re
import shutil
import stat
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from onbox.errors import ServiceError
from onbox.service.args import DISK_NAME
from onbox.shareio import Share, ShareAccessError
from schema.layout import DISK_LIST

# Whole disks as the kernel names them; not loop, ram, sr, dm-, zram, md, partitions.
# disk-devices.lst is a few names; anything much larger is damage, not a list.
DISK_LIST_LIMIT = 64 * 1024
MAX_DISKS = 64
REAL_DISK = re.compile(r"^(sd[a-z]+|hd[a-z]+|vd[a-z]+|xvd[a-z]+|nvme[0-9]+n[0-9]+)$")


def read_disk_list(box: Share) -> list[str] | None:
    """Names in `disk-devices.lst` (one per line, `sda` or `/dev/sda`; `#` comments and blank
    lines ignored); None when there is no such file. A link, FIFO, device or directory there,
    a list larger than DISK_LIST_LIMIT or more than MAX_DISKS names is refused."""
    path = box.path(DISK_LIST)
    try:
        text = box.try_read_text(DISK_LIST, DISK_LIST_LIMIT)
    except ShareAccessError as exc:
        raise ServiceError(exc.message) from None
    if text is None:
        return None
    names: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name = line.removeprefix("/dev/")
        if not DISK_NAME.fullmatch(name):
            shown = line if len(line) <= 40 else line[:40] + "..."
            raise ServiceError(f"{path}:{number}: {shown!r} is not a whole-disk name")
        if len(names) >= MAX_DISKS:
            raise ServiceError(f"{path}:{number}: more than {MAX_DISKS} disks listed")
        if name not in names:
            names.append(name)
    return names


def discover_disks(sys_block: Path = Path("/sys/block")) -> list[str]:
    """Real disks the kernel knows, sorted by name."""
    try:
        entries = sorted(p.name for p in sys_block.iterdir())
    except OSError:
        return []
    return [name for name in entries if REAL_DISK.fullmatch(name)]


def is_block_device(path: Path) -> bool:
    try:
        return stat.S_ISBLK(path.stat().st_mode)
    except OSError:
        return False


def wait_for_devices(
    paths: list[Path],
    timeout: float,
    say: Callable[[str], None],
    *,
    poll: float = 0.2,
    clock: Callable[[], float] = time.monotonic,
) -> list[Path]:
    """Wait until every path is a block device or `timeout` passes; the ones still missing.

    This replaces systemd-udev-settle in the maintenance boot: the disk drivers (ahci, nvme,
    virtio_blk) are not in the netboot initramfs, udev loads them during coldplug after the
    switch to the real root, and the service can start first. Settling waits for *every*
    device of the machine (over a minute under a loaded TCG guest); this waits only for the
    disks the request names, and gives up after `timeout` (the disk is then "not a block
    device, skipped" and the action fails with a one-line reason instead of hanging).
    """
    missing = [p for p in paths if not is_block_device(p)]
    if not missing:
        return []
    say(f"waiting up to {timeout:g} s for {', '.join(map(str, missing))}")
    started = clock()
    while missing and clock() - started < timeout:
        time.sleep(poll)
        missing = [p for p in missing if not is_block_device(p)]
    if not missing:
        say(f"disks present after {clock() - started:.1f} s")
    return missing


def settle_udev(timeout: float, say: Callable[[str], None]) -> None:
    """Without a disk list the service images every disk it finds, so it must wait for udev's
    coldplug to end first (bounded); with a list, wait_for_devices is enough and faster."""
    if shutil.which("udevadm") is None or not Path("/run/udev/control").exists():
        return
    try:
        subprocess.run(
            ["udevadm", "settle", f"--timeout={int(timeout)}"],
            check=False,
            capture_output=True,
            timeout=timeout + 5,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        say(f"udevadm settle: {exc}")


def select_disks(
    box: Share,
    disk_map: Mapping[str, Path],
    say: Callable[[str], None],
    *,
    sys_block: Path = Path("/sys/block"),
    dev: Path = Path("/dev"),
    wait: float = 0.0,
) -> dict[str, Path]:
    """Disk name -> path for this run, in list order; listed disks that are not there yet are
    waited for, up to `wait` seconds (see wait_for_devices)."""
    listed = read_disk_list(box)
    if listed is not None:
        names, source = listed, box.path(DISK_LIST)
    elif disk_map:
        names, source = list(disk_map), "--disk"
    else:
        if wait > 0:
            settle_udev(wait, say)
        names, source = discover_disks(sys_block), str(sys_block)
    if disk_map:
        unmapped = [n for n in names if n not in disk_map]
        if unmapped:
            raise ServiceError(
                f"disk {', '.join(unmapped)} (from {source}) has no --disk mapping; with "
                "--disk every disk must be mapped"
            )
    if wait > 0:
        wait_for_devices([dev / n for n in names if n not in disk_map], wait, say)
    selected: dict[str, Path] = {}
    for name in names:
        if name in disk_map:
            path = disk_map[name]
            if not path.exists():
                raise ServiceError(f"disk {name}: --disk path {path} does not exist")
            if not (path.is_file() or is_block_device(path)):
                raise ServiceError(f"disk {name}: {path} is neither a file nor a block device")
            selected[name] = path
        else:
            path = dev / name
            if not is_block_device(path):
                say(f"{path} is not a block device, skipped")
                continue
            selected[name] = path
    return selected
