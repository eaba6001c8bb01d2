"""`testboxctl init --lab DIR`: a working lab on local disk, for trying testboxctl out.

A lab is the two shares as the real ones look (SPEC §2): `DIR/tftp` with PXELINUX and the
local-boot `pxelinux.cfg/default`, `DIR/backup` with its `testbox-backup` marker, and
`DIR/desired.yaml` pointing at both with a few sample boxes. The PXELINUX files come from
Debian's `pxelinux` and `syslinux-common` packages when they are installed; without them the
lab still works for testboxctl (it never reads them), only a box could not boot from it.

Every file is written atomically; an existing non-empty DIR is refused unless forced, and even
forced only the lab's own files are rewritten (box directories and images are kept).
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

from controller.errors import ControllerError
from onbox.atomic import atomic_write_bytes, atomic_write_text
from schema.layout import BACKUP_MARKER, DEFAULT_CONFIG, DEFAULT_CONFIG_TEXT, PXE_CFG_DIR

PXELINUX_FILE = Path("/usr/lib/PXELINUX/pxelinux.0")
SYSLINUX_BIOS_DIR = Path("/usr/lib/syslinux/modules/bios")
LDLINUX = "ldlinux.c32"
LAB_DESIRED = "desired.yaml"

SAMPLE_DESIRED = """\
# A sample lab made by `testboxctl init --lab`. Paths are relative to this file.
# Try: testboxctl validate -f {name}/desired.yaml
#      testboxctl reconcile --dry-run -f {name}/desired.yaml
site:
  tftp_root: tftp
  backup_root: backup
  maintenance:
    kernel: maintenance-boot/vmlinuz
    initrd: maintenance-boot/initrd.img
    nfs_server: 10.0.2.2
    nfsroot: /export/testbox-nfsroot
    network: {{mode: static, gateway: 10.0.2.2, netmask: 255.255.255.0, device: eth0}}
  defaults: {{disks: [sda], retention: {{keep_last: 3}}, max_attempts: 3}}
boxes:
  - {{name: tb-w10-01, ip: 10.0.2.15, action: backup}}
  - {{name: tb-lnx-07, ip: 10.0.2.16, disks: [sda, sdb], action: restore, request: "2026-11-25"}}
  - {{name: tb-idle-03, ip: 10.0.2.17}}
"""


@dataclass
class LabReport:
    """What `create_lab` did, for the CLI to print."""

    root: Path
    written: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _copy(source: Path, target: Path, report: LabReport) -> None:
    atomic_write_bytes(target, source.read_bytes(), mode=0o644)
    report.written.append(target)


def _copy_pxelinux(tftp: Path, pxelinux: Path, bios_dir: Path, report: LabReport) -> None:
    """pxelinux.0 and ldlinux.c32 in the TFTP root, every BIOS module under bios/ (seed)."""
    if pxelinux.is_file():
        _copy(pxelinux, tftp / pxelinux.name, report)
    else:
        report.notes.append(
            f"{pxelinux} not found (Debian package pxelinux not installed): the lab has no "
            "pxelinux.0, so no box can boot from it; testboxctl itself works without it"
        )
    modules = sorted(p for p in bios_dir.glob("*") if p.is_file()) if bios_dir.is_dir() else []
    if not modules:
        report.notes.append(
            f"{bios_dir} not found (Debian package syslinux-common not installed): the lab has "
            f"no {LDLINUX} and no bios/ modules"
        )
        return
    (tftp / "bios").mkdir(exist_ok=True)
    for module in modules:
        _copy(module, tftp / "bios" / module.name, report)
        if module.name == LDLINUX:
            _copy(module, tftp / LDLINUX, report)


def create_lab(
    root: Path,
    *,
    force: bool = False,
    pxelinux: Path = PXELINUX_FILE,
    syslinux_bios: Path = SYSLINUX_BIOS_DIR,
) -> LabReport:
    """Create (or with `force`, refresh) the lab at `root`; raise ControllerError if in the way."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise ControllerError(f"{root}: exists and is not a directory")
    if root.is_dir() and any(root.iterdir()) and not force:
        raise ControllerError(
            f"{root}: exists and is not empty; use --force to rewrite the lab's own files "
            "(box directories and images are kept)"
        )
    report = LabReport(root=root)
    tftp, backup = root / "tftp", root / "backup"
    try:
        for directory in (tftp / PXE_CFG_DIR, backup):
            directory.mkdir(parents=True, exist_ok=True)
        atomic_write_text(tftp / PXE_CFG_DIR / DEFAULT_CONFIG, DEFAULT_CONFIG_TEXT)
        report.written.append(tftp / PXE_CFG_DIR / DEFAULT_CONFIG)
        _copy_pxelinux(tftp, pxelinux, syslinux_bios, report)
        atomic_write_bytes(backup / BACKUP_MARKER, b"")
        report.written.append(backup / BACKUP_MARKER)
        desired = root / LAB_DESIRED
        atomic_write_text(desired, SAMPLE_DESIRED.format(name=os.path.normpath(root)))
        report.written.append(desired)
    except OSError as exc:
        raise ControllerError(
            f"cannot create the lab at {root}: {exc.strerror or exc}"
            + (f": {exc.filename}" if exc.filename else "")
        ) from None
    report.notes.append(
        "the sample boxes boot maintenance-boot/vmlinuz and initrd.img from the TFTP share; "
        "put a maintenance kernel there to boot real boxes"
    )
    return report
