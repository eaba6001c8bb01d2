"""Names on the two shares (contract §2): pure functions and constants, no I/O.

The TFTP layout is dictated by PXELINUX's config search; the backup share layout comes from the
seed's scripts. Both the controller and the on-box service build paths only from these.
"""

import functools
import ipaddress
import re

from schema.types import DISK_NAME_PATTERN, ArmableAction

# TFTP share
PXE_CFG_DIR = "pxelinux.cfg"
DEFAULT_CONFIG = "default"
PXELINUX_BOOTFILE = "pxelinux.0"
MANAGED_MARKER = "# managed-by: testboxctl"
REQUEST_COMMENT = "# request: "
# A one-box override (`testboxctl pxe-conf`): the overriding box, as canonical JSON, in the
# managed config itself (contract §3, overrides).
OVERRIDE_COMMENT = "# override: "
DEFAULT_CONFIG_TEXT = "PATH bios\nDEFAULT local-boot\nLABEL local-boot\nLOCALBOOT 0\n"

# Backup share
BACKUP_MARKER = "testbox-backup"
GLOBAL_LOG = "maintenance.log"
LOCK_FILE = "testboxctl.lock"
STORE_DIR = "store"
BOX_LOG = "maintenance.log"
BOX_OUTPUT_LOG = "maintenance-output.log"
DISK_LIST = "disk-devices.lst"
REQUEST_FILE = "request.json"
POWER_FILE = "power.json"
RESULTS_DIR = "results"
IMAGES_DIR = "images"
INFO_TXT = "testbox-info.txt"
INFO_ZIP = "testbox-info.zip"
INVENTORY = "inventory.json"
# Written by testboxctl each time it arms a request (contract §3, no endless boot loops): counts the
# maintenance boots a request was given, whether or not the box could record a result.
ARM_RECORD = "armed.json"
# Legacy (seed) images in a box directory: `<disk>.gz`, `<disk>.raw.gz`, renamed `*.imported`.
LEGACY_IMAGE_NAME = re.compile(rf"({DISK_NAME_PATTERN})(\.raw)?\.gz")

# Every name the layout itself uses in a box directory or the backup root. A box's hostname
# file lives in its box directory, so a box may not be called any of these (nor a legacy
# image's name): `results` would be a file where the service needs a directory.
LAYOUT_NAMES = frozenset(
    {
        RESULTS_DIR,
        IMAGES_DIR,
        REQUEST_FILE,
        POWER_FILE,
        ARM_RECORD,
        DISK_LIST,
        BOX_LOG,
        BOX_OUTPUT_LOG,
        INFO_TXT,
        INFO_ZIP,
        INVENTORY,
        BACKUP_MARKER,
        GLOBAL_LOG,
        LOCK_FILE,
        STORE_DIR,
        ARM_RECORD,
    }
)


def box_name_collision(name: str) -> str | None:
    """Why `name` cannot be a box's name on the share (it collides with the layout), or None.

    Compared case-insensitively: the share may be exported from a case-insensitive filesystem.
    """
    lower = name.lower()
    if lower in LAYOUT_NAMES:
        return f"{name!r} collides with the backup share layout (contract §2)"
    base = lower.removesuffix(".imported")
    if LEGACY_IMAGE_NAME.fullmatch(base):
        return f"{name!r} collides with a legacy image file name in the box directory"
    return None


# Kernel command line
ACTION_ARG_PREFIX = "testbox-action-"
REQUEST_ARG_PREFIX = "testbox-request="


@functools.lru_cache(maxsize=65536)
def hex_ip(ip: str) -> str:
    """PXELINUX's name for an IPv4 address: 8 upper-case hex digits (10.0.2.15 -> 0A00020F).

    Cached: a plan asks for each box's name several times, and parsing the address is most of
    the cost (a bad address raises every time: exceptions are not cached).
    """
    return f"{int(ipaddress.IPv4Address(ip)):08X}"


def mac_config_name(mac: str) -> str:
    """PXELINUX's MAC-based name: ARP type 01, then the MAC with dashes, lower case."""
    return "01-" + mac.lower().replace(":", "-")


def config_names(ip: str, mac: str | None) -> list[str]:
    """Every box-specific config name a box may have, hex IP first."""
    return [hex_ip(ip)] + ([mac_config_name(mac)] if mac else [])


def result_name(request_id: str) -> str:
    return f"{request_id}.json"


def action_arg(action: ArmableAction) -> str:
    return f"{ACTION_ARG_PREFIX}{action}"


def request_arg(request_id: str) -> str:
    return f"{REQUEST_ARG_PREFIX}{request_id}"


def parse_managed_header(text: str) -> tuple[bool, str | None]:
    """(is managed, request id) from a PXE config's leading comment lines."""
    managed = False
    request: str | None = None
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        if line.strip() == MANAGED_MARKER:
            managed = True
        elif line.startswith(REQUEST_COMMENT):
            request = line[len(REQUEST_COMMENT) :].strip() or None
    return managed, request


def log_line(timestamp: str, ip: str, level: str, text: str) -> str:
    """One line of the seed's logs: `<ISO-8601 UTC>: <ip>: info|error: <text>` (newline-safe)."""
    flat = " ".join(text.splitlines())
    return f"{timestamp}: {ip}: {level}: {flat}\n"
