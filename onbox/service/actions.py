"""The five actions on top of the image engine (onbox.imaging) and store (onbox.store).

- backup: refuses when the box already has an image (seed: protect a known-good image from an
  accidental second backup; legacy gz images count); backup-again does not.
- restore: the image the request names (an id, `latest`, or `legacy` for the seed's gz files).
- refresh-info: only the info files (written before the action, see session).
- rescue: nothing to do here; the session records `rescue-ready` and stays up.

Imaging progress goes through the engine's progress callback to the console and the per-box
logs (a line at most every PROGRESS_INTERVAL seconds per disk, and one when a disk is done).
"""

import errno
import os
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from onbox.errors import ServiceError
from onbox.imaging.disks import Reader, disk_size
from onbox.imaging.progress import LogProgress
from onbox.service.logs import SessionLog
from onbox.store import open_store
from schema.request import DiskFigures, Request

PROGRESS_INTERVAL = 10.0


@dataclass
class ActionReport:
    image_id: str | None = None
    disks: list[DiskFigures] = field(default_factory=list)


def run_action(
    backup_root: Path, request: Request, disks: Mapping[str, Path], log: SessionLog
) -> ActionReport:
    if request.action in ("refresh-info", "rescue"):
        return ActionReport()
    if not disks:
        raise ServiceError(f"{request.action}: no disks to image")
    store = open_store(backup_root)
    progress = LogProgress(log.progress_line, interval=PROGRESS_INTERVAL)
    # Each engine is imported by the action that uses it: a restore's start-up (a fixed cost of
    # every maintenance boot) does not load the backup engine and the used-block mappers.
    if request.action == "restore":
        from onbox.imaging.restore import restore_image

        ref = request.image or "latest"
        log.info(f"restoring image {ref} onto {_describe(disks)}")
        restored = restore_image(store, request.ip, ref, disks, progress=progress)
        for note in restored.notices:  # e.g. a damaged newer image skipped by "latest"
            log.info(note)
        return ActionReport(image_id=restored.image_id, disks=list(restored.disks))
    if request.action == "backup":
        images = store.list_images(request.ip)
        if images:
            raise ServiceError(
                f"backup refused: box {request.ip} already has {len(images)} image(s), newest "
                f"{images[-1].id} ({images[-1].kind}); use backup-again to add another"
            )
    from onbox.imaging.backup import DiskStream, backup_streams
    from onbox.imaging.usedmap import map_disk

    log.info(f"backing up {_describe(disks)}")
    with ExitStack() as stack:
        streams: dict[str, DiskStream] = {}
        for name, path in disks.items():
            size = disk_size(path)
            f = stack.enter_context(open(path, "rb", buffering=0))
            used = None
            if request.free_space == "skip":
                disk_map = map_disk(path, size)
                for note in disk_map.notes:
                    log.info(f"{name}: {note}")
                used = disk_map.used
            skip = _seeker(f.fileno())
            streams[name] = DiskStream(sized_reader(f.read, size), size, used, skip)
        backed_up = backup_streams(
            store, request.ip, streams, progress=progress, free_space=request.free_space
        )
    return ActionReport(image_id=backed_up.image_id, disks=list(backed_up.disks))


def sized_reader(read: Reader, size: int) -> Reader:
    """A reader that fails, like a disk read error, when the disk ends before `size` bytes.

    A disk that shrinks while it is read (a file truncated, a device going away) would
    otherwise end the stream early and the backup would commit a short image as if whole.
    """
    position = 0

    def checked(length: int) -> bytes:
        nonlocal position
        data = read(length)
        position += len(data)
        if not data and length > 0 and position < size:
            raise OSError(
                errno.EIO, f"disk ended at byte {position} of {size} (shrunk or unreadable)"
            )
        return data

    return checked


def _seeker(fd: int) -> Callable[[int], object]:
    """Skip free chunks without reading them (free_space: skip)."""
    return lambda n: os.lseek(fd, n, os.SEEK_CUR)


def _describe(disks: Mapping[str, Path]) -> str:
    return ", ".join(f"{name} ({path})" for name, path in disks.items())
