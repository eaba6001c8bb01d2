"""Which temp files a killed testboxctl run left behind, and may now be removed. Pure.

An atomic write creates `.<first 40 chars of the name>.<random>.tmp` beside its target and
renames it into place; a run killed in between leaves the temp file forever. The next run, under
the share lock, removes the ones that are *its own* and dead:
- in `pxelinux.cfg/` every `.*.tmp` (only testboxctl writes configs there);
- in a box directory only temps of the files testboxctl writes there (`request.json`,
  `disk-devices.lst`, `armed.json`, the box's hostname file): the on-box service writes its own
  files in the same directory, and its temp files are not ours to judge;
- and only when older than `older_than` seconds: a run holding the lock is the only controller
  writing, but the clock of a share server and ours may differ by a little.
"""

from datetime import datetime

from schema.desired import DesiredState
from schema.layout import ARM_RECORD, DISK_LIST, PXE_CFG_DIR, REQUEST_FILE
from schema.observed import Observed

DEAD_AFTER_SECONDS = 300.0
_TEMP_STEM = 40  # onbox.shareio.temp_name keeps this many characters of the target name


def _own(name: str, targets: set[str]) -> bool:
    return any(name.startswith(f".{target[:_TEMP_STEM]}.") for target in targets)


def dead_temp_files(
    desired: DesiredState,
    observed: Observed,
    now: datetime,
    older_than: float = DEAD_AFTER_SECONDS,
) -> list[tuple[str, str]]:
    """(share, share-relative path) of every dead temp file of ours, in a stable order."""
    cutoff = now.timestamp() - older_than
    out: list[tuple[str, str]] = [
        ("tftp", f"{PXE_CFG_DIR}/{name}")
        for name, mtime in sorted(observed.config_temp_files.items())
        if mtime < cutoff
    ]
    hostnames = {box.ip: box.name for box in desired.boxes}
    for ip, box in observed.boxes.items():
        if not box.temp_files:
            continue
        targets = {REQUEST_FILE, DISK_LIST, ARM_RECORD}
        if ip in hostnames:
            targets.add(hostnames[ip])
        out.extend(
            ("backup", f"{ip}/{name}")
            for name, mtime in sorted(box.temp_files.items())
            if mtime < cutoff and _own(name, targets)
        )
    return out
