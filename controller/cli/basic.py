"""Commands that need no plan: `validate`, `schema`, `init --lab DIR`, `pxe-conf`."""

import json
from pathlib import Path
from typing import Annotated

import typer

from controller.cli.app import app, console, warn
from controller.cli.options import (
    LOCK_TIMEOUT,
    BackupRootOpt,
    DesiredFileOpt,
    LockTimeoutOpt,
    TftpRootOpt,
)
from controller.desired.load import load_desired
from controller.errors import ControllerError
from controller.io.shares import resolve_shares
from controller.tools.lab import (
    EFI_MODULES,
    PXELINUX_FILE,
    SYSLINUX_BIOS_DIR,
    SYSLINUX_EFI_FILE,
    create_lab,
)
from schema.desired import DesiredState


def _say(text: str) -> None:
    # soft_wrap: one line stays one line whatever the terminal width (scripts parse it).
    console.print(text, markup=False, highlight=False, soft_wrap=True)


@app.command()
def validate(file: DesiredFileOpt = None) -> None:
    """Validate the desired state; exit 1 with one line per problem (file:line: field: problem)."""
    loaded = load_desired(file)
    state = loaded.state
    armed = sum(1 for box in state.boxes if box.action != "none")
    files = ", ".join(str(p) for p in loaded.sources)
    _say(f"valid: {len(state.boxes)} boxes ({armed} with an action) in {files}")


@app.command()
def schema() -> None:
    """Print the JSON Schema of the desired-state file (for editors and CI checks)."""
    document = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **DesiredState.model_json_schema(),
        "title": "testboxctl desired state",
    }
    _say(json.dumps(document, indent=2))


@app.command()
def init(
    lab: Annotated[
        Path | None,
        typer.Option(
            "--lab", help="Directory to create the lab in (tftp/, backup/, desired.yaml)."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Rewrite the lab's own files in an existing DIR.")
    ] = False,
    pxelinux: Annotated[
        Path, typer.Option("--pxelinux", hidden=True, help="pxelinux.0 to copy.")
    ] = PXELINUX_FILE,
    syslinux_bios: Annotated[
        Path, typer.Option("--syslinux-bios", hidden=True, help="BIOS modules to copy.")
    ] = SYSLINUX_BIOS_DIR,
    syslinux_efi: Annotated[
        Path, typer.Option("--syslinux-efi", hidden=True, help="syslinux.efi to copy.")
    ] = SYSLINUX_EFI_FILE,
) -> None:
    """Create a working lab for trying things: DIR/tftp, DIR/backup and DIR/desired.yaml."""
    if lab is None:
        raise ControllerError("init needs --lab DIR (the directory to create the lab in)")
    report = create_lab(
        lab,
        force=force,
        pxelinux=pxelinux,
        syslinux_bios=syslinux_bios,
        syslinux_efi=syslinux_efi,
    )
    module_dirs = ["bios", *EFI_MODULES]
    shown = [p for p in report.written if p.parent.name not in module_dirs]
    _say(f"created lab in {report.root}:")
    for path in shown:
        _say(f"  {path}")
    for directory in module_dirs:
        modules = sum(1 for p in report.written if p.parent.name == directory)
        if modules:
            _say(f"  {report.root / 'tftp' / directory}/ ({modules} SYSLINUX {directory} modules)")
    for note in report.notes:
        _say(f"note: {note}")
    _say(f"next: testboxctl reconcile --dry-run -f {report.root / 'desired.yaml'}")


@app.command("pxe-conf")
def pxe_conf_command(  # noqa: PLR0917  (typer maps parameters to options)
    ip_or_name: Annotated[str, typer.Argument(metavar="IP-OR-NAME", help="Box IP or name.")],
    action: Annotated[
        str,
        typer.Argument(
            metavar="ACTION",
            help="none, backup, backup-again, restore, refresh-info or rescue (none disarms).",
        ),
    ],
    file: DesiredFileOpt = None,
    tftp_root: TftpRootOpt = None,
    backup_root: BackupRootOpt = None,
    request: Annotated[
        str | None,
        typer.Option("--request", help="Request token (default: the time of this run)."),
    ] = None,
    image: Annotated[
        str | None, typer.Option("--image", help="Image to restore (default: latest).")
    ] = None,
    lock_timeout: LockTimeoutOpt = LOCK_TIMEOUT,
) -> None:
    """Arm one box for ACTION now (none disarms), like the seed's testbox-pxe-conf.sh.

    A one-box override through the planner: it lasts until its request is done, then the
    desired file rules the box again.
    """
    # Imported here: only this command needs the one-box override (start-up cost).
    from controller.tools.pxe_conf import pxe_conf

    loaded = load_desired(file)
    shares = resolve_shares(loaded, tftp_root, backup_root)
    report = pxe_conf(
        loaded.state,
        shares,
        ip_or_name,
        action,
        token=request,
        image=image,
        lock_timeout=lock_timeout,
        warn=warn,
    )
    for line in report.applied:
        _say(line)
    for line in report.conflicts:
        warn(f"skipped (changed since observed; run pxe-conf again): {line}")
    box = report.box
    if box.action == "none":
        if not report.applied:
            _say(f"no managed PXE config for {box.name} ({box.ip}): nothing to do")
        return
    if not report.applied:
        _say(f"{box.name} ({box.ip}) already armed for {box.action}: nothing to do")
    _say(
        f"{box.name} ({box.ip}) armed for {box.action}, request {report.request_id or '-'}; "
        "reboot the box. The override lasts until the request is done; then reconcile "
        "converges the box back to the desired state."
    )
