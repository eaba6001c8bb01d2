"""The box-specific PXELINUX config testboxctl writes (contract §2), as a pure function.

Kept byte-compatible with what the seed's `testbox-pxe-conf.sh` emitted, plus the two leading
comment lines that mark the file as managed and name the request. The planner compares a
config on the share with this text to detect drift, so the output is fully determined by its
inputs: no dates, no host names of the machine rendering it.

Under UEFI the same file is read by `syslinux.efi`: `PATH efi64` names its modules, and the
`local-boot` entry's `LOCALBOOT` makes syslinux.efi return to the firmware ("Load Error"), which
then boots the next entry of its boot order. The boxes' firmware is set up with the network
(PXE over IPv4) first and the disk next (docs/network-boot.md), so that next entry is the disk:
exiting to the firmware is the local boot. (COM32 chain.c32 crashes OVMF; syslinux.efi cannot
start another EFI binary.)

Every value placed here was validated by schema.types (no whitespace, newline or directive can
reach this text); `_check_line` is a last guard that a future field cannot slip one through.
"""

import re

from schema.desired import EffectiveBox, Firmware, Site
from schema.layout import MANAGED_MARKER, REQUEST_COMMENT, action_arg, request_arg

# The SYSLINUX module directory each firmware's loader uses (the seed's bios/, efi64/ copies).
MODULE_PATH: dict[Firmware, str] = {"bios": "bios", "uefi": "efi64"}


def kernel_ip_arg(site: Site, box: EffectiveBox) -> str:
    """The kernel's `ip=` argument: static addressing for the maintenance system, or dhcp."""
    net = site.maintenance.network
    if net.mode == "dhcp":
        return "ip=dhcp"
    server = site.maintenance.nfs_server
    return f"ip={box.ip}:{server}:{net.gateway}:{net.netmask}:maintenance:{net.device}"


def append_args(site: Site, box: EffectiveBox, request_id: str) -> list[str]:
    """The APPEND line's arguments, in the seed's order, then the site's extra arguments."""
    if box.action == "none":
        raise ValueError(f"box {box.name}: action none has no PXE config")
    m = site.maintenance
    return [
        f"initrd={m.initrd}",
        action_arg(box.action),
        request_arg(request_id),
        "ro",
        "aufs=tmpfs",
        "boot=nfs",
        "root=/dev/nfs",
        f"nfsroot={m.nfs_server}:{m.nfsroot},ro,tcp",
        "nfsvers=3",
        kernel_ip_arg(site, box),
        *m.extra_args,
    ]


# A control character (below U+0020) would end a PXELINUX line early or hide one: one search
# per line instead of a Python-level look at each character (a plan renders ~12 lines a box).
_CONTROL = re.compile(r"[\x00-\x1f]")


def _check_line(line: str) -> str:
    if _CONTROL.search(line) is not None:
        raise ValueError(f"control character in PXE config line {line!r}")
    return line


def render_box_config(
    site: Site, box: EffectiveBox, request_id: str, *, override: str | None = None
) -> str:
    """The full text of `pxelinux.cfg/<HEXIP>` arming `box` for `request_id`.

    `override`: the `# override: ...` line of a one-box override (controller.core.override),
    kept in the header so the next reconcile plans the override, not the desired box.
    """
    lines = [
        MANAGED_MARKER,
        f"{REQUEST_COMMENT}{request_id}",
        *([override] if override is not None else []),
        f"PATH {MODULE_PATH[box.firmware]}",
        "DEFAULT maintenance",
        "LABEL maintenance",
        "  MENU LABEL Maintenance (NFS)",
        f"  KERNEL {site.maintenance.kernel}",
        "  APPEND " + " ".join(append_args(site, box, request_id)),
        "LABEL local-boot",
        # BIOS: boot the first disk. UEFI: the argument is ignored; back to the firmware's
        # boot order, whose next entry is the disk.
        "LOCALBOOT 0",
    ]
    return "\n".join(_check_line(line) for line in lines) + "\n"
