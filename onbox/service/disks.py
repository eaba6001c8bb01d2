"""Which disks this run images, and where they are.

The seed imaged the disks listed in `<ip>/disk-devices.lst` (the controller writes it for every
armed request), else every real disk in /sys/block; a name that is not a block device is
skipped with a log line. `--disk NAME=PATH` maps a name to a file or another device (tests, and
imaging a file). When any `--disk` is given, every disk of the run must be mapped: a run that
is half mapped would read, or for a restore write, this machine's own `/dev` disks by accident.
"""

import re
import stat
from collections.abc import Callable, Mapping
from pathlib import Path

from onbox.errors import ServiceError
from onbox.service.args import DISK_NAME
from schema.layout import DISK_LIST

# Whole disks as the kernel names them; not loop, ram, sr, dm-, zram, md, partitions.
REAL_DISK = re.compile(r"^(sd[a-z]+|hd[a-z]+|vd[a-z]+|xvd[a-z]+|nvme[0-9]+n[0-9]+)$")


def read_disk_list(path: Path) -> list[str] | None:
    """Names in `disk-devices.lst` (one per line, `sda` or `/dev/sda`; `#` comments and blank
    lines ignored); None when there is no such file."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ServiceError(f"{path}: cannot read: {exc}") from None
    names: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name = line.removeprefix("/dev/")
        if not DISK_NAME.match(name):
            raise ServiceError(f"{path}:{number}: {line!r} is not a whole-disk name")
        if name not in names:
            names.append(name)
    return names


def discover_disks(sys_block: Path = Path("/sys/block")) -> list[str]:
    """Real disks the kernel knows, sorted by name."""
    try:
        entries = sorted(p.name for p in sys_block.iterdir())
    except OSError:
        return []
    return [name for name in entries if REAL_DISK.match(name)]


def is_block_device(path: Path) -> bool:
    try:
        return stat.S_ISBLK(path.stat().st_mode)
    except OSError:
        return False


def select_disks(
    box_dir: Path,
    disk_map: Mapping[str, Path],
    say: Callable[[str], None],
    *,
    sys_block: Path = Path("/sys/block"),
    dev: Path = Path("/dev"),
) -> dict[str, Path]:
    """Disk name -> path for this run, in list order."""
    listed = read_disk_list(box_dir / DISK_LIST)
    if listed is not None:
        names, source = listed, str(box_dir / DISK_LIST)
    elif disk_map:
        names, source = list(disk_map), "--disk"
    else:
        names, source = discover_disks(sys_block), str(sys_block)
    if disk_map:
        unmapped = [n for n in names if n not in disk_map]
        if unmapped:
            raise ServiceError(
                f"disk {', '.join(unmapped)} (from {source}) has no --disk mapping; with "
                "--disk every disk must be mapped"
            )
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
