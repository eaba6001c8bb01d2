"""The box's hardware/OS info on the backup share, as the seed kept it, plus `inventory.json`.

- `testbox-info.txt`: host name, IP, PXELINUX hex IP, then the output of /proc/cpuinfo,
  `lspci -vvv`, `biosdecode`, `dmidecode`, `fdisk -l` (of the disks of this run) and `dmesg`.
  A tool that is not installed, fails or hangs is noted in its section; it never fails the run
  (the maintenance root may lack pciutils or dmidecode, and VMs have no DMI tables).
- `testbox-info.zip`: /proc/cpuinfo and /sys/firmware (ACPI tables, DMI, memory map), without
  the TPM's `raw_event_log`, which can be large and is not hardware description.
- `inventory.json` (schema.inventory) and the empty `<hostname>` file to find a box by name.

Every file is written atomically through `onbox.shareio` (never through a link): a reader sees
the previous info or the new, never half.
"""

import io
import os
import shutil
import subprocess
import zipfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import onbox
from onbox.service.inventory import collect_inventory
from onbox.shareio import KIND_WORDS, Share
from schema.layout import (
    BOX_LOG,
    BOX_OUTPUT_LOG,
    DISK_LIST,
    IMAGES_DIR,
    INFO_TXT,
    INFO_ZIP,
    INVENTORY,
    REQUEST_FILE,
    RESULTS_DIR,
    hex_ip,
)

TOOL_TIMEOUT = 60.0


class InfoWritten(NamedTuple):
    names: list[str]
    notes: list[str]


ZIP_SKIP = frozenset({"raw_event_log"})
ZIP_FILE_LIMIT = 64 * 1024 * 1024


def run_tool(argv: Sequence[str], timeout: float = TOOL_TIMEOUT) -> str:
    """A section's text: the tool's output, or why there is none."""
    if shutil.which(argv[0]) is None:
        return f"({argv[0]}: not installed)\n"
    try:
        done = subprocess.run(
            list(argv),
            check=False,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            env={**os.environ, "LC_ALL": "C"},
        )
    except subprocess.TimeoutExpired:
        return f"({' '.join(argv)}: no answer within {timeout:g} s)\n"
    except OSError as exc:
        return f"({' '.join(argv)}: cannot run: {exc.strerror or exc})\n"
    text = done.stdout.decode("utf-8", "replace")
    err = done.stderr.decode("utf-8", "replace").strip()
    if done.returncode != 0:
        text += f"({' '.join(argv)}: exit status {done.returncode}{': ' + err if err else ''})\n"
    return text


def _file_section(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError as exc:
        return f"({path}: {exc.strerror or exc})\n"


def info_text(ip: str, hostname: str, disks: Mapping[str, Path], proc: Path) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    parts = [
        f"Hostname: {hostname}\n",
        f"IP: {ip}\n",
        f"HEXIP: {hex_ip(ip)}\n",
        f"Collected: {now} by testbox-maintenance {onbox.__version__}\n",
    ]
    sections: list[tuple[str, str]] = [
        (str(proc / "cpuinfo"), _file_section(proc / "cpuinfo")),
        ("lspci -vvv", run_tool(["lspci", "-vvv"])),
        ("biosdecode", run_tool(["biosdecode"])),
        ("dmidecode", run_tool(["dmidecode"])),
    ]
    fdisk = ["fdisk", "-l", *(str(p) for p in disks.values())] if disks else ["fdisk", "-l"]
    sections.append((" ".join(fdisk), run_tool(fdisk)))
    sections.append(("dmesg", run_tool(["dmesg"])))
    for title, body in sections:
        parts.append(f"\n===== {title} =====\n")
        parts.append(body if body.endswith("\n") or not body else body + "\n")
    return "".join(parts)


def info_zip(proc: Path, firmware: Path) -> bytes:
    """Zip of cpuinfo and the firmware tree; unreadable entries are skipped (sysfs has some)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        _zip_file(zf, proc / "cpuinfo", "proc/cpuinfo")
        for root, dirs, files in os.walk(firmware):
            dirs.sort()
            for name in sorted(files):
                if name in ZIP_SKIP:
                    continue
                path = Path(root) / name
                _zip_file(zf, path, "sys/firmware/" + str(path.relative_to(firmware)))
    return buf.getvalue()


def _zip_file(zf: zipfile.ZipFile, path: Path, arcname: str) -> None:
    try:
        with open(path, "rb") as f:
            data = f.read(ZIP_FILE_LIMIT)
    except OSError:
        return
    zf.writestr(arcname, data)


# Names a host-name marker must never take: the box directory's own layout (a marker named
# `images` or `results` would break the box; one named `sda.gz` would look like an empty legacy
# image) and temp files. Suffixes cover every record kind the layout has.
RESERVED_NAMES = frozenset(
    {REQUEST_FILE, DISK_LIST, RESULTS_DIR, IMAGES_DIR, BOX_LOG, BOX_OUTPUT_LOG}
    | {INFO_TXT, INFO_ZIP, INVENTORY}
)
RESERVED_SUFFIXES = (".gz", ".json", ".lst", ".log", ".txt", ".zip", ".tmp", ".lease")


def marker_problem(hostname: str) -> str | None:
    """Why `hostname` cannot be the marker file's name, or None."""
    if hostname in RESERVED_NAMES or hostname.lower().endswith(RESERVED_SUFFIXES):
        return f"host name {hostname!r} collides with the box directory's layout"
    if hostname.startswith("."):
        return f"host name {hostname!r} would be a hidden file"
    return None


def write_info(
    box: Share,
    ip: str,
    hostname: str,
    disks: Mapping[str, Path],
    *,
    proc: Path = Path("/proc"),
    sys: Path = Path("/sys"),
) -> InfoWritten:
    """Write all info files into the box directory; the names written and notes (a host-name
    marker left out). Raises ShareAccessError naming the file that cannot be written."""
    box.write_atomic(INFO_TXT, info_text(ip, hostname, disks, proc))
    box.write_atomic(INFO_ZIP, info_zip(proc, sys / "firmware"))
    inventory = collect_inventory(ip, hostname, disks, proc=proc, sys=sys)
    box.write_atomic(INVENTORY, inventory.model_dump_json(indent=2) + "\n")
    written = [INFO_TXT, INFO_ZIP, INVENTORY]
    notes: list[str] = []
    if hostname != "unknown":
        problem = marker_problem(hostname)
        kind = box.kind(hostname) if problem is None else "missing"
        if problem is not None:
            notes.append(f"{problem}: no marker file written")
        elif kind == "missing":
            box.write_atomic(hostname, b"")
            written.append(hostname)
        elif kind == "file":
            written.append(hostname)
        else:
            notes.append(f"{box.path(hostname)}: {KIND_WORDS[kind]}; marker left alone")
    return InfoWritten(written, notes)
