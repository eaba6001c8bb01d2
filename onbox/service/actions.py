"""The five actions on top of the image engine (onbox.imaging) and store (onbox.store).

- backup: refuses when the box already has an image (seed: protect a known-good image from an
  accidental second backup; legacy gz images count); backup-again does not.
- restore: the image the request names (an id, `latest`, or `legacy` for the seed's gz files).
- refresh-info: only the info files (written before the action, see session).
- rescue: nothing to do here; the session records `rescue-ready` and stays up.

Imaging progress is reported through the engine's progress callback to the console and the
per-box logs.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from onbox.errors import ServiceError
from onbox.service.logs import SessionLog
from schema.request import DiskFigures, Request


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
    from onbox.store import open_store

    store = open_store(backup_root)
    if request.action == "restore":
        ref = request.image or "latest"
        log.info(f"restoring image {ref} onto {_describe(disks)}")
        raise ServiceError("restore: the imaging engine is not wired in yet")
    if request.action == "backup":
        images = store.list_images(request.ip)
        if images:
            raise ServiceError(
                f"backup refused: box {request.ip} already has {len(images)} image(s), newest "
                f"{images[-1].id} ({images[-1].kind}); use backup-again to add another"
            )
    log.info(f"backing up {_describe(disks)}")
    raise ServiceError("backup: the imaging engine is not wired in yet")


def _describe(disks: Mapping[str, Path]) -> str:
    return ", ".join(f"{name} ({path})" for name, path in disks.items())
