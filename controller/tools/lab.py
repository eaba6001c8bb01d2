"""`testboxctl init --lab DIR`: a working lab on local disk, for trying testboxctl out.

A lab is the two shares as the real ones look (contract §2): `DIR/tftp` with PXELINUX and the
local-boot `pxelinux.cfg/default`, `DIR/backup` with its `testbox-backup` marker, and
`DIR/desired.yaml` pointing at both with a few sample boxes. The boot loaders are what the seed
copies: `pxelinux.0` (Debian `pxelinux`) for BIOS boxes, `syslinux.efi` (`syslinux-efi`, the
x86-64 one) for UEFI boxes, every `ldlinux.*` (`ldlinux.c32`, `.e32`, `.e64`) in the root and
the `bios/`, `efi32/`, `efi64/` module directories (`syslinux-common`, `syslinux-efi`). A
missing package is a note naming it; the lab still works for testboxctl (it never reads
these files), only a box of that firmware could not boot from it.

Every file is written atomically; an existing non-empty DIR is refused unless forced, and even
forced only the lab's own files are rewritten (box directories and images are kept).
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

from controller.errors import ControllerError
from onbox.shareio import Share, ShareAccessError
from schema.layout import BACKUP_MARKER, DEFAULT_CONFIG, DEFAULT_CONFIG_TEXT, PXE_CFG_DIR

PXELINUX_FILE = Path("/usr/lib/PXELINUX/pxelinux.0")
SYSLINUX_EFI_FILE = Path("/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi")
SYSLINUX_BIOS_DIR = Path("/usr/lib/syslinux/modules/bios")
LDLINUX = "ldlinux.c32"
# Module directory beside bios/ → (its ldlinux, the Debian package shipping it).
EFI_MODULES = {
    "efi32": ("ldlinux.e32", "syslinux-efi"),
    "efi64": ("ldlinux.e64", "syslinux-efi"),
}
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


def _write(share: Path, rel: str, data: bytes | str, report: LabReport) -> None:
    """Through onbox.shareio like every share write: `--force` on an existing lab whose shares
    hold links never writes through them."""
    Share(share).write_atomic(rel, data, 0o644, create_dirs=True)
    report.written.append(share / rel)


def _copy(source: Path, share: Path, rel: str, report: LabReport) -> None:
    _write(share, rel, source.read_bytes(), report)


def _copy_loader(source: Path, tftp: Path, package: str, firmware: str, report: LabReport) -> None:
    if source.is_file():
        _copy(source, tftp, source.name, report)
    else:
        report.notes.append(
            f"{source} not found (Debian package {package} not installed): the lab has no "
            f"{source.name}, so no {firmware} box can boot from it; testboxctl itself works "
            "without it"
        )


def _copy_modules(tftp: Path, source: Path, ldlinux: str, package: str, report: LabReport) -> None:
    """One module directory under its own name, its ldlinux.* also in the TFTP root (seed)."""
    modules = sorted(p for p in source.glob("*") if p.is_file()) if source.is_dir() else []
    if not modules:
        report.notes.append(
            f"{source} not found (Debian package {package} not installed): the lab has "
            f"no {ldlinux} and no {source.name}/ modules"
        )
        return
    for module in modules:
        _copy(module, tftp, f"{source.name}/{module.name}", report)
        if module.name == ldlinux:
            _copy(module, tftp, ldlinux, report)


def _copy_syslinux(
    tftp: Path, pxelinux: Path, syslinux_efi: Path, bios_dir: Path, report: LabReport
) -> None:
    """pxelinux.0 and syslinux.efi, the ldlinux.* files in the root, bios/ efi32/ efi64/ (seed).

    The EFI module directories are looked up beside `bios_dir` (Debian installs all three
    under /usr/lib/syslinux/modules/).
    """
    _copy_loader(pxelinux, tftp, "pxelinux", "BIOS", report)
    _copy_loader(syslinux_efi, tftp, "syslinux-efi", "UEFI", report)
    _copy_modules(tftp, bios_dir, LDLINUX, "syslinux-common", report)
    for name, (ldlinux, package) in EFI_MODULES.items():
        _copy_modules(tftp, bios_dir.parent / name, ldlinux, package, report)


def create_lab(
    root: Path,
    *,
    force: bool = False,
    pxelinux: Path = PXELINUX_FILE,
    syslinux_bios: Path = SYSLINUX_BIOS_DIR,
    syslinux_efi: Path = SYSLINUX_EFI_FILE,
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
        _write(tftp, f"{PXE_CFG_DIR}/{DEFAULT_CONFIG}", DEFAULT_CONFIG_TEXT, report)
        _copy_syslinux(tftp, pxelinux, syslinux_efi, syslinux_bios, report)
        _write(backup, BACKUP_MARKER, b"", report)
        _write(root, LAB_DESIRED, SAMPLE_DESIRED.format(name=os.path.normpath(root)), report)
    except ShareAccessError as exc:
        raise ControllerError(f"cannot create the lab: {exc.message}") from None
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
