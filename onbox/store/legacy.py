"""The seed's images: `<ip>/sda.gz` or `<ip>/sda.raw.gz`, a gzip of the raw disk (contract §2).

They are listed as one image with id `legacy` (kind "legacy") whose disks are the gz files in
the box directory, dated by the newest file's mtime. When both `sda.gz` and `sda.raw.gz` exist,
the newer file is the disk's image. The uncompressed size is unknown without reading the whole
file (gzip's trailer holds it modulo 4 GiB only), so `size` is 0 and `stored_bytes` is the gz size.
"""

import re
from datetime import UTC, datetime

from onbox.store.base import LEGACY_ID, LegacyFile
from schema.image import ImageDisk, ImageInfo

_DISK = r"(sd[a-z]{1,2}|hd[a-z]|vd[a-z]{1,2}|xvd[a-z]{1,2}|nvme[0-9]+n[0-9]+)"
LEGACY_NAME = re.compile(rf"^{_DISK}(\.raw)?\.gz$")


def legacy_disk(name: str) -> str | None:
    """The disk a legacy file name images, or None when it is not one."""
    match = LEGACY_NAME.fullmatch(name)
    return match.group(1) if match else None


def pick_legacy(files: list[LegacyFile]) -> list[LegacyFile]:
    """One file per disk (the newest), sorted by disk name."""
    best: dict[str, LegacyFile] = {}
    for f in files:
        current = best.get(f.disk)
        if current is None or (f.mtime, f.name) > (current.mtime, current.name):
            best[f.disk] = f
    return [best[d] for d in sorted(best)]


def legacy_image_info(box_ip: str, files: list[LegacyFile]) -> ImageInfo | None:
    chosen = pick_legacy(files)
    if not chosen:
        return None
    newest = max(f.mtime for f in chosen)
    return ImageInfo(
        id=LEGACY_ID,
        box_ip=box_ip,
        created=datetime.fromtimestamp(newest, UTC),
        kind="legacy",
        disks=[ImageDisk(disk=f.disk, size=0, stored_bytes=f.stored_bytes) for f in chosen],
    )
