"""`testboxctl build-maintenance-root`: build the maintenance system and publish its kernel.

Needs root (debootstrap, chroot) and Debian's apt (the kernel package). A second run with the
same inputs reuses the cached base and root and only copies the boot files.
"""

import time
from pathlib import Path
from typing import Annotated

import typer

from controller.cli.app import app, console, console_err

DEFAULT_CACHE = Path("/var/cache/testboxctl")


@app.command("build-maintenance-root")
def build_maintenance_root_cmd(  # noqa: PLR0917  (typer maps parameters to options)
    out: Annotated[Path, typer.Option("--out", help="Directory of the root (the NFS export).")],
    tftp_root: Annotated[
        Path | None,
        typer.Option(
            "--tftp-root",
            envvar="TESTBOX_TFTP_ROOT",
            help="Copy kernel and initrd to <tftp-root>/maintenance-boot/.",
        ),
    ] = None,
    cache: Annotated[
        Path, typer.Option("--cache", help="Kernel package, wheels and base roots are kept here.")
    ] = DEFAULT_CACHE,
    nfs_server: Annotated[
        str, typer.Option("--nfs-server", help="Server of the two shares in the root's fstab.")
    ] = "10.0.2.2",
    tftp_export: Annotated[str, typer.Option("--tftp-export")] = "/export/testbox-tftp",
    backup_export: Annotated[str, typer.Option("--backup-export")] = "/export/testbox-backup",
    mirror: Annotated[str, typer.Option("--mirror")] = "http://deb.debian.org/debian",
    suite: Annotated[str, typer.Option("--suite")] = "bookworm",
    kernel_deb: Annotated[
        Path | None, typer.Option("--kernel-deb", help="Use this linux-image .deb.")
    ] = None,
    project: Annotated[
        Path | None, typer.Option("--project", help="Project source tree to install.")
    ] = None,
) -> None:
    """Build the maintenance root with debootstrap and publish its kernel and initrd."""
    # Imported here, not at the top: the builder (and what it imports) is ~50 ms of start-up
    # that every other command would pay (docs/architecture.md, "Start-up").
    from controller.tools.maintroot.build import (
        BuildSettings,
        build_maintenance_root,
        project_dir_of_this_checkout,
    )

    started = time.monotonic()
    settings = BuildSettings(
        out=out.resolve(),
        cache=cache.resolve(),
        project_dir=(project or project_dir_of_this_checkout()).resolve(),
        suite=suite,
        mirror=mirror,
        kernel_deb=kernel_deb,
        nfs_server=nfs_server,
        tftp_export=tftp_export,
        backup_export=backup_export,
    )
    report = build_maintenance_root(
        settings,
        tftp_root.resolve() if tftp_root else None,
        log=lambda step: console_err.print(f"build-maintenance-root: {step}", markup=False),
    )
    reuse = "reused" if report.root_reused else "built"
    base = "cached" if report.base_reused else "new"
    console.print(
        f"maintenance root {reuse} at {report.root} (base {base}, kernel "
        f"{report.kernel_version}, {time.monotonic() - started:.0f} s)",
        markup=False,
    )
    for path in report.boot_files:
        console.print(f"  {path}", markup=False)
