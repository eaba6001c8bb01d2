"""`inventory.json`: the box's hardware read from /proc and /sys (no external tools needed).

Every field is best effort: a value the kernel does not expose here (no DMI in a VM, no serial
for a virtio disk, root-only DMI serial) is None, never an error.
"""

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import onbox
from onbox.service.disks import is_block_device
from schema.inventory import CpuInfo, DiskInfo, DmiInfo, Inventory, NicInfo


def _read(path: Path) -> str | None:
    try:
        value = path.read_text(errors="replace").strip()
    except OSError:
        return None
    return value or None


def cpu_info(proc: Path) -> CpuInfo:
    text = _read(proc / "cpuinfo") or ""
    model: str | None = None
    count = 0
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "processor":
            count += 1
        elif key in ("model name", "Model", "cpu model") and model is None:
            model = value.strip() or None
    return CpuInfo(model=model, count=count)


def memory_bytes(proc: Path) -> int | None:
    for line in (_read(proc / "meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1]) * 1024
    return None


def disk_size(path: Path) -> int | None:
    """Bytes of a disk: seek to the end works for block devices and files alike."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    except OSError:
        return None
    finally:
        os.close(fd)


def disk_info(name: str, path: Path, sys_block: Path) -> DiskInfo:
    model = serial = None
    if is_block_device(path):
        # For /dev/<name> the kernel's attributes describe the device (nvme: its controller).
        device = sys_block / path.name / "device"
        model = _read(device / "model")
        serial = _read(device / "serial") or _read(sys_block / path.name / "serial")
    else:
        model = "file"
    return DiskInfo(name=name, path=str(path), size=disk_size(path), model=model, serial=serial)


def nic_info(sys_net: Path) -> list[NicInfo]:
    try:
        names = sorted(p.name for p in sys_net.iterdir())
    except OSError:
        return []
    return [NicInfo(name=n, mac=_read(sys_net / n / "address")) for n in names if n != "lo"]


def dmi_info(dmi: Path) -> DmiInfo:
    return DmiInfo(
        vendor=_read(dmi / "sys_vendor"),
        product=_read(dmi / "product_name"),
        serial=_read(dmi / "product_serial"),
    )


def collect_inventory(
    ip: str,
    hostname: str,
    disks: Mapping[str, Path],
    *,
    proc: Path = Path("/proc"),
    sys: Path = Path("/sys"),
) -> Inventory:
    return Inventory(
        ip=ip,
        hostname=hostname,
        collected=datetime.now(UTC),
        service_version=onbox.__version__,
        cpu=cpu_info(proc),
        memory_bytes=memory_bytes(proc),
        disks=[disk_info(n, p, sys / "block") for n, p in disks.items()],
        nics=nic_info(sys / "class" / "net"),
        dmi=dmi_info(sys / "class" / "dmi" / "id"),
    )
