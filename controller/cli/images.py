"""`images`, `verify`, `gc` and `import-legacy`: the image store from the operator's side.

They need only the backup share: `--backup-root` (or TESTBOX_BACKUP_ROOT) is enough, else the
share comes from the desired file (`-f`). The share's marker is checked before anything is
read, so an unmounted share is an error, not an empty store. Commands that change the share
(`gc`, `import-legacy`) take the share lock like `reconcile`; `gc` is safe against backups
running on boxes at the same time by its own protocol (docs/images.md).
"""

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from controller.cli.app import app, console, print_table, warn
from controller.cli.options import (
    LOCK_TIMEOUT,
    BackupRootOpt,
    DesiredFileOpt,
    JsonOpt,
    LockTimeoutOpt,
)
from controller.desired.load import load_desired
from controller.errors import ControllerError
from controller.io.lock import share_lock
from controller.io.observe import check_backup_marker
from controller.io.shares import BACKUP_ROOT_ENV
from onbox.errors import IntegrityError
from onbox.imaging.gc import DEFAULT_GRACE, collect_garbage
from onbox.imaging.progress import Progress, TerminalProgress, human_bytes
from onbox.store import ImageStore, open_store
from schema.image import ImageInfo
from schema.types import is_ipv4


def _store(file: Path | None, backup_root: str | None) -> tuple[Path, ImageStore]:
    if backup_root:
        root = Path(backup_root).expanduser().absolute()
    elif file is not None:
        root = Path(load_desired(file).state.site.backup_root)
    else:
        try:
            loaded = load_desired(None)
        except ControllerError as exc:
            raise ControllerError(
                f"no backup share: give --backup-root or set {BACKUP_ROOT_ENV} ({exc.message})"
            ) from None
        root = Path(loaded.state.site.backup_root)
    check_backup_marker(root)
    return root, open_store(root)


def _box(value: str | None) -> str | None:
    if value is None:
        return None
    if is_ipv4(value):
        return value
    raise ControllerError(f"not a box IP address (dotted decimal): {value!r}")


def _progress() -> Progress | None:
    return TerminalProgress(sys.stderr) if sys.stderr.isatty() else None


def _disks_text(image: ImageInfo) -> str:
    parts = []
    for d in image.disks:
        size = human_bytes(d.size) if d.size else "size unknown"
        parts.append(f"{d.disk} {size}")
    return ", ".join(parts) or "-"


BoxOpt = Annotated[
    str | None, typer.Option("--box", help="Only this box (its IP address).", show_default=False)
]


@app.command()
def images(
    file: DesiredFileOpt = None,
    backup_root: BackupRootOpt = None,
    box: BoxOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the committed images (and the seed's legacy gz images), oldest first."""
    listing = _store(file, backup_root)[1].scan(_box(box))
    for problem in listing.problems:
        warn(problem)
    listed = listing.images
    if as_json:
        doc = {"images": [json.loads(i.model_dump_json()) for i in listed]}
        console.file.write(json.dumps(doc, indent=2) + "\n")
        return
    if not listed:
        console.print("no images")
        return
    from rich.table import Table  # only a listing prints a table (start-up cost)

    table = Table(title=f"{len(listed)} image(s)")
    for column in ("box", "image", "kind", "created (UTC)", "disks", "stored"):
        table.add_column(column, no_wrap=column != "disks")
    for image in listed:
        stored = sum(d.stored_bytes for d in image.disks)
        table.add_row(
            image.box_ip,
            image.id,
            # free_space: skip images say so (they hold only what the filesystems used).
            image.kind if image.free_space == "raw" else f"{image.kind}, free space skipped",
            f"{image.created:%Y-%m-%d %H:%M:%S}",
            _disks_text(image),
            human_bytes(stored),
        )
    print_table(table)


@app.command()
def verify(
    image: Annotated[
        str | None,
        typer.Argument(
            metavar="[IMAGE]",
            help="An image id, BOX-IP/IMAGE-ID, or a box IP for all its images. Default: all.",
            show_default=False,
        ),
    ] = None,
    file: DesiredFileOpt = None,
    backup_root: BackupRootOpt = None,
) -> None:
    """Check every chunk of the image(s): present and hashing to its name. Exit 1 if not."""
    # Imported here: verify pulls in the codec (zstandard) and the chunk pipeline, start-up
    # cost that every other command would pay (docs/architecture.md, "Start-up").
    from onbox.imaging.verify import verify_images

    _root, store = _store(file, backup_root)
    box_ip: str | None = None
    image_id: str | None = None
    if image is not None:
        head, _, tail = image.partition("/")
        if tail:
            box_ip, image_id = _box(head), tail
        elif head.count(".") == 3 and head.replace(".", "").isdigit():
            box_ip = _box(head)
        else:
            image_id = head
    report = verify_images(store, box_ip, image_id, progress=_progress())
    if report.record_error:
        warn(report.record_error)
    for problem in report.problems:
        console.print(str(problem), markup=False)
    summary = (
        f"{len(report.images)} image(s), {report.chunks_checked} chunk(s), "
        f"{human_bytes(report.bytes_checked)} checked"
    )
    if not report.ok:
        damaged = ", ".join(f"{ip}/{iid}" for ip, iid in report.damaged_images())
        raise IntegrityError(
            f"verify: {len(report.problems)} bad chunk use(s) in {damaged} ({summary})"
        )
    console.print(f"ok: {summary}", markup=False)


@app.command()
def gc(
    file: DesiredFileOpt = None,
    backup_root: BackupRootOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would be removed; remove nothing.")
    ] = False,
    grace: Annotated[
        float,
        typer.Option(
            "--grace", min=0, help="Keep unreferenced chunks younger than this many seconds."
        ),
    ] = DEFAULT_GRACE,
    lock_timeout: LockTimeoutOpt = LOCK_TIMEOUT,
) -> None:
    """Remove chunks no image references (safe while backups run on boxes)."""
    root, store = _store(file, backup_root)
    if dry_run:
        report = collect_garbage(store, dry_run=True, grace=grace)
    else:
        with share_lock(root, "testboxctl gc", timeout=lock_timeout, warn=warn):
            report = collect_garbage(store, dry_run=False, grace=grace)
    young = f", {report.young} unreferenced but younger than {grace:.0f}s kept"
    leased = f", {report.leased} leased by running backups" if report.leased else ""
    head = f"{report.chunks_total} chunk(s): {report.referenced} referenced{leased}{young}"
    if dry_run:
        console.print(
            f"{head}; would remove {len(report.garbage)} chunk(s), "
            f"{human_bytes(report.garbage_bytes)}",
            markup=False,
        )
        return
    rescued = f" ({len(report.rescued)} put back for a backup)" if report.rescued else ""
    console.print(
        f"{head}; removed {report.removed} chunk(s), {human_bytes(report.bytes_freed)}{rescued}",
        markup=False,
    )
    for pending in report.pending_removed:
        console.print(f"removed interrupted backup {pending}", markup=False)
    for lease in report.stale_leases:
        console.print(f"removed stale lease {lease}", markup=False)
    if report.dead_runs:
        console.print(
            f"put back {report.trash_restored} chunk(s) from the trash of killed gc run(s) "
            f"{', '.join(report.dead_runs)}",
            markup=False,
        )
    for problem in report.problems:
        warn(problem)


@app.command("import-legacy")
def import_legacy_command(
    box: Annotated[str, typer.Argument(metavar="BOX-IP", help="The box whose sdX.gz to import.")],
    file: DesiredFileOpt = None,
    backup_root: BackupRootOpt = None,
    lock_timeout: LockTimeoutOpt = LOCK_TIMEOUT,
) -> None:
    """Move a box's legacy gz image into the store (the gz is renamed to *.imported)."""
    # Imported here: the legacy import pulls in the whole backup engine (start-up cost).
    from onbox.imaging.legacy import import_legacy

    root, store = _store(file, backup_root)
    ip = _box(box)
    assert ip is not None
    with share_lock(root, f"testboxctl import-legacy {ip}", timeout=lock_timeout, warn=warn):
        report = import_legacy(store, ip, progress=_progress())
    disks = ", ".join(f"{d.disk} {human_bytes(d.size)}" for d in report.disks)
    console.print(
        f"imported legacy image of {ip} as {report.image_id} ({disks}; "
        f"{human_bytes(report.bytes_stored)} new in the store)",
        markup=False,
    )
