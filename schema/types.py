"""Validated scalar types for every value that reaches a path, a file name or a PXE config.

Each type says what it accepts in its pattern; anything that could escape a directory (`..`,
`/`), start a new line, or add a PXELINUX directive or a kernel argument is rejected here, at
load time, so that no later code has to think about it.
"""

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, StringConstraints

Action = Literal["none", "backup", "backup-again", "restore", "refresh-info", "rescue"]
ArmableAction = Literal["backup", "backup-again", "restore", "refresh-info", "rescue"]
# How a backup treats blocks no filesystem uses (contract §4): image them (raw) or skip them.
FreeSpace = Literal["raw", "skip"]
ACTIONS: tuple[str, ...] = ("none", "backup", "backup-again", "restore", "refresh-info", "rescue")

# One source for each naming rule: the types below and every other module that needs to match
# such a name (a legacy image file, a store directory) build on these patterns (unanchored).
DISK_NAME_PATTERN = r"(?:sd[a-z]{1,2}|hd[a-z]|vd[a-z]{1,2}|xvd[a-z]{1,2}|nvme[0-9]+n[0-9]+)"
IMAGE_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
REQUEST_TOKEN_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.:+-]{0,63}"
REQUEST_ID_PATTERN = r"[0-9a-f]{12}"
NET_DEVICE_PATTERN = r"[a-z][a-z0-9_.]{0,14}"
HOST_LABEL_PATTERN = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
PATH_SEGMENT_PATTERN = r"[A-Za-z0-9._+-]+"
KERNEL_ARG_PATTERN = r"[A-Za-z0-9._:/,=+@-]+"

_HOST_LABEL = re.compile(HOST_LABEL_PATTERN)


# Canonical dotted decimal (no leading zeros): what `str(IPv4Address(v)) == v` accepts, as one
# regex, because the controller validates ~10 addresses per box and 10,000 boxes per run.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def _ipv4(value: str) -> str:
    if _CANONICAL_IPV4.fullmatch(value):
        return value
    try:
        addr = ipaddress.IPv4Address(value)
    except ValueError:
        raise ValueError(f"not a dotted-decimal IPv4 address: {value!r}") from None
    if str(addr) != value:
        raise ValueError(f"not a canonical dotted-decimal IPv4 address: {value!r}")
    return value


def is_ipv4(value: str) -> bool:
    """Whether `value` is what `IPv4` accepts (canonical dotted decimal): the one IPv4 rule."""
    try:
        _ipv4(value)
    except ValueError:
        return False
    return True


def _hostname(value: str) -> str:
    """RFC 1123 host name; box names also become file names on the backup share."""
    if not value or len(value) > 253:
        raise ValueError("host name must be 1 to 253 characters")
    if not all(_HOST_LABEL.fullmatch(label) for label in value.split(".")):
        raise ValueError(
            f"not an RFC 1123 host name: {value!r} "
            "(letters, digits and '-' in dot-separated labels, no leading or trailing '-')"
        )
    return value


def _mac(value: str) -> str:
    """Accept aa:bb:.. or aa-bb-..; store lower-case with colons."""
    if not re.fullmatch(r"[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}", value):
        raise ValueError(f"not a MAC address (six hex pairs separated by ':' or '-'): {value!r}")
    return value.replace("-", ":").lower()


def _server(value: str) -> str:
    if re.fullmatch(r"[0-9.]+", value):
        return _ipv4(value)
    return _hostname(value)


def _tftp_path(value: str) -> str:
    """A path below the TFTP root: relative, plain segments, no `..`."""
    if value.startswith("/"):
        raise ValueError(f"must be relative to the TFTP root, not absolute: {value!r}")
    segments = value.split("/")
    if any(seg in ("", ".", "..") for seg in segments):
        raise ValueError(f"empty, '.' or '..' path segment: {value!r}")
    if not all(re.fullmatch(PATH_SEGMENT_PATTERN, seg) for seg in segments):
        raise ValueError(f"only letters, digits and ._+- allowed in path segments: {value!r}")
    return value


def _export_path(value: str) -> str:
    """An absolute NFS export path, safe on a kernel command line."""
    if not value.startswith("/"):
        raise ValueError(f"must be an absolute path: {value!r}")
    if value != "/":
        _tftp_path(value[1:].rstrip("/") or ".")
    return value


def _share_path(value: str) -> str:
    """A local path to a share; any file name is fine but not a control character."""
    if not value or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("empty path or control character in path")
    return value


# Kernel arguments the controller sets itself; an extra argument may not override them.
RESERVED_KERNEL_ARGS = ("initrd", "root", "nfsroot", "ip", "boot", "BOOT_IMAGE")


def _kernel_arg(value: str) -> str:
    if not re.fullmatch(KERNEL_ARG_PATTERN, value):
        raise ValueError(
            f"kernel argument may only hold letters, digits and ._:/,=+@- (no spaces): {value!r}"
        )
    key = value.split("=", 1)[0]
    if key in RESERVED_KERNEL_ARGS or key.startswith("testbox-"):
        raise ValueError(f"kernel argument {key!r} is set by testboxctl and may not be overridden")
    return value


IPv4 = Annotated[str, AfterValidator(_ipv4)]
Hostname = Annotated[str, AfterValidator(_hostname)]
MacAddress = Annotated[str, AfterValidator(_mac)]
ServerAddress = Annotated[str, AfterValidator(_server)]
TftpPath = Annotated[str, AfterValidator(_tftp_path)]
ExportPath = Annotated[str, AfterValidator(_export_path)]
SharePath = Annotated[str, AfterValidator(_share_path)]
KernelArg = Annotated[str, AfterValidator(_kernel_arg)]
NetDevice = Annotated[str, StringConstraints(pattern=rf"^{NET_DEVICE_PATTERN}$")]
# sd*, hd*, vd*, xvd* and nvme<ctrl>n<ns>: the whole-disk names the on-box service images.
DiskName = Annotated[str, StringConstraints(pattern=rf"^{DISK_NAME_PATTERN}$")]
# Image ids become directory names under <ip>/images/.
ImageId = Annotated[str, StringConstraints(pattern=rf"^{IMAGE_ID_PATTERN}$")]
ImageRef = Annotated[str, StringConstraints(pattern=rf"^{IMAGE_ID_PATTERN}$")]
# The operator's re-run token: a date, a ticket number.
RequestToken = Annotated[str, StringConstraints(pattern=rf"^{REQUEST_TOKEN_PATTERN}$")]
RequestId = Annotated[str, StringConstraints(pattern=rf"^{REQUEST_ID_PATTERN}$")]


def matches(pattern: str, value: str) -> bool:
    """Whether `value` is exactly one `pattern` name (e.g. `matches(DISK_NAME_PATTERN, "sda")`)."""
    return re.fullmatch(pattern, value) is not None
