"""A UEFI test box: OVMF firmware, its boot order, and a GPT disk whose ESP boots a marker.

Why the boot order matters: under UEFI, PXELINUX's `LOCALBOOT` (syslinux.efi) does not boot a
disk itself, it returns "Load Error" to the firmware, which then starts the next entry of its
boot order. With OVMF's own order that is HTTP boot over IPv4 (~60 s under TCG), then PXE and
HTTP over IPv6, and only then the disk: 88 to 200 s. A real lab sets each UEFI box's boot
order once in the firmware setup: PXE over IPv4 first, the disk next.
`harness.Box.setup_firmware` does the same to the box's NVRAM (its copy of OVMF_VARS): one
short boot with QEMU `bootindex` lets OVMF create its boot entries, then the variable store's
`BootOrder` is rewritten in place to "PXEv4, disk, the rest". Later boots carry no `bootindex`
(it would make OVMF rewrite the order again, with every network entry of the NIC before the
disk), so the firmware follows its NVRAM like a real box. Entries OVMF adds later (IPv6 ones)
go to the end, after the disk.

The box's disk stands in for its own OS: a GPT disk with an EFI system partition holding
`EFI/BOOT/BOOTX64.EFI`, a GRUB standalone image (`grub-mkstandalone -O x86_64-efi`) whose
embedded config prints `LOCAL_DISK_MARKER` and ends QEMU through isa-debug-exit (status 33),
exactly like the BIOS boxes' boot sector. The ESP is built as a file with mkfs.vfat and mtools
and copied into the partition: no loop device, no mount.
"""

import random
import shutil
import struct
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
SYSLINUX_EFI = Path("/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi")
SYSLINUX_EFI64 = Path("/usr/lib/syslinux/modules/efi64")
GRUB_EFI_MODULES = Path("/usr/lib/grub/x86_64-efi")
TOOLS = {
    "grub-mkstandalone": "grub-common / grub-efi-amd64-bin",
    "mkfs.vfat": "dosfstools",
    "mmd": "mtools",
    "mcopy": "mtools",
    "sgdisk": "gdisk",
}
# What OVMF prints when it is about to PXE-boot: its boot entries exist by then.
PXE_STARTING = ">>Start PXE over IPv4"

MiB = 1 << 20
ESP_START = 1 * MiB
ESP_SIZE = 8 * MiB
SECTOR = 512


def missing() -> list[str]:
    """What a UEFI box needs on this machine, as 'thing (Debian package)'."""
    found = []
    for path, package in (
        (OVMF_CODE, "ovmf"),
        (OVMF_VARS, "ovmf"),
        (SYSLINUX_EFI, "syslinux-efi"),
        (SYSLINUX_EFI64 / "ldlinux.e64", "syslinux-efi"),
        (GRUB_EFI_MODULES / "iorw.mod", "grub-efi-amd64-bin"),
    ):
        if not path.is_file():
            found.append(f"{path} (Debian package {package})")
    found += [f"{tool} ({pkg})" for tool, pkg in TOOLS.items() if shutil.which(tool) is None]
    return found


# ---------------------------------------------------------------------------------------------
# The box's disk


def marker_loader(path: Path, marker: str, workdir: Path) -> None:
    """A GRUB EFI image that prints `marker` and exits QEMU with status 33 (isa-debug-exit)."""
    cfg = workdir / "grub.cfg"
    # `outb 0xf4 0x10`: isa-debug-exit turns it into exit status (0x10 << 1) | 1 = 33.
    cfg.write_text(f'echo "{marker}"\noutb 0xf4 0x10\nhalt\n')
    subprocess.run(
        [
            "grub-mkstandalone",
            "-O",
            "x86_64-efi",
            "--modules=echo iorw halt",
            "--install-modules=normal echo iorw halt",
            "--locales=",
            "--fonts=",
            "--themes=",
            "-o",
            str(path),
            f"boot/grub/grub.cfg={cfg}",
        ],
        check=True,
        capture_output=True,
    )


def make_uefi_disk(path: Path, size: int, seed: int, marker: str, workdir: Path) -> None:
    """GPT: partition 1 the ESP with EFI/BOOT/BOOTX64.EFI, partition 2 a mix of random,
    repeated and zero 1 MiB regions (the same kinds of content as the BIOS boxes' disks)."""
    workdir.mkdir(parents=True, exist_ok=True)
    loader = workdir / "BOOTX64.EFI"
    marker_loader(loader, marker, workdir)
    esp = workdir / "esp.img"
    esp.unlink(missing_ok=True)
    with esp.open("wb") as f:
        f.truncate(ESP_SIZE)
    # A fixed volume id keeps the disk's bytes a function of the seed alone.
    subprocess.run(
        ["mkfs.vfat", "-i", "7e57b0c5", "-n", "ESP", str(esp)], check=True, capture_output=True
    )
    for command in (
        ["mmd", "-i", str(esp), "::EFI", "::EFI/BOOT"],
        ["mcopy", "-i", str(esp), str(loader), "::EFI/BOOT/BOOTX64.EFI"],
    ):
        subprocess.run(command, check=True, capture_output=True)
    with path.open("wb") as f:
        f.truncate(size)
    first, last = ESP_START // SECTOR, (ESP_START + ESP_SIZE) // SECTOR - 1
    subprocess.run(
        [
            "sgdisk",
            "--disk-guid=7e57b0c5-0000-4000-8000-000000000001",
            f"--new=1:{first}:{last}",
            "--typecode=1:ef00",
            "--change-name=1:EFI system partition",
            "--partition-guid=1:7e57b0c5-0000-4000-8000-000000000002",
            "--new=2:0:0",
            "--typecode=2:8300",
            "--change-name=2:data",
            "--partition-guid=2:7e57b0c5-0000-4000-8000-000000000003",
            str(path),
        ],
        check=True,
        capture_output=True,
    )
    rng = random.Random(seed)
    data_start = ESP_START + ESP_SIZE
    data_end = size - MiB  # the backup GPT lives in the last MiB
    with path.open("r+b") as f:
        f.seek(ESP_START)
        f.write(esp.read_bytes())
        for i, offset in enumerate(range(data_start, data_end, MiB)):
            f.seek(offset)
            kind = i % 4
            if kind == 1:
                f.write(rng.randbytes(MiB))
            elif kind >= 2:
                f.write((f"testbox block {i} ".encode() * (MiB // 16))[:MiB])


# ---------------------------------------------------------------------------------------------
# The firmware's variable store (edk2 authenticated variable format, as in OVMF_VARS_4M.fd)

_AUTH_VARSTORE = uuid.UUID("aaf32c78-947b-439a-a180-2e144ec37792").bytes_le
_VAR_START = 0x55AA
_VAR_ADDED = 0x3F  # a live variable; older copies are marked deleted (other state bits)
_VAR_HEADER = 60  # AUTHENTICATED_VARIABLE_HEADER
_VARSTORE_HEADER = 28


@dataclass(frozen=True)
class Variable:
    name: str
    data_offset: int
    data_size: int


def live_variables(store: bytes | bytearray) -> Iterator[Variable]:
    """The live (VAR_ADDED) variables of an edk2 variable store file, in store order."""
    fv_header_length = struct.unpack_from("<H", store, 0x30)[0]
    base = fv_header_length
    if store[base : base + 16] != _AUTH_VARSTORE:
        raise ValueError("not an edk2 authenticated variable store")
    (size,) = struct.unpack_from("<I", store, base + 16)
    position, end = base + _VARSTORE_HEADER, base + size
    while position + _VAR_HEADER <= end:
        start_id, state = struct.unpack_from("<HB", store, position)
        if start_id != _VAR_START:
            break
        name_size, data_size = struct.unpack_from("<II", store, position + 36)
        name_offset = position + _VAR_HEADER
        data_offset = name_offset + name_size
        if state == _VAR_ADDED:
            name = store[name_offset:data_offset].decode("utf-16-le").rstrip("\0")
            yield Variable(name, data_offset, data_size)
        position = (data_offset + data_size + 3) & ~3


@dataclass(frozen=True)
class BootEntry:
    number: int
    description: str
    network: bool  # the device path has a MAC node
    ipv4_pxe: bool  # ... then an IPv4 node and no URI node (not HTTP boot)
    firmware_volume: bool  # an application inside the firmware (UiApp, the EFI shell)


def _boot_entry(number: int, data: bytes) -> BootEntry:
    """EFI_LOAD_OPTION: attributes, device path length, description (UCS-2), device path."""
    (path_length,) = struct.unpack_from("<H", data, 4)
    end = 6
    while data[end : end + 2] != b"\0\0":
        end += 2
    description = data[6:end].decode("utf-16-le")
    path = data[end + 2 : end + 2 + path_length]
    nodes = []
    position = 0
    while position + 4 <= len(path):
        kind, subtype, length = struct.unpack_from("<BBH", path, position)
        nodes.append((kind, subtype))
        if kind == 0x7F or length < 4:
            break
        position += length
    mac, ipv4, uri, fv = (3, 11), (3, 12), (3, 24), (4, 7)
    network = mac in nodes
    return BootEntry(
        number=number,
        description=description,
        network=network,
        ipv4_pxe=network and ipv4 in nodes and uri not in nodes,
        firmware_volume=fv in nodes,
    )


def boot_entries(store: bytes | bytearray) -> tuple[list[int], dict[int, BootEntry]]:
    """(BootOrder, the Boot#### entries) of a variable store."""
    order: list[int] = []
    entries: dict[int, BootEntry] = {}
    for var in live_variables(store):
        data = store[var.data_offset : var.data_offset + var.data_size]
        if var.name == "BootOrder":
            order = list(struct.unpack(f"<{var.data_size // 2}H", data))
        elif var.name.startswith("Boot") and len(var.name) == 8:
            try:
                number = int(var.name[4:], 16)
            except ValueError:
                continue
            entries[number] = _boot_entry(number, bytes(data))
    return order, entries


def network_then_disk(store: bytearray) -> list[BootEntry]:
    """Rewrite BootOrder in place: PXE over IPv4 first, the disk next, the rest after them.

    The same entries in a new order: the variable keeps its size, so only its data changes
    (edk2 keeps no checksum over variable data). Returns the new order.
    """
    order, entries = boot_entries(store)
    listed = [entries[n] for n in order if n in entries]
    pxe = next(e for e in listed if e.ipv4_pxe)
    disk = next(e for e in listed if not e.network and not e.firmware_volume)
    new = [pxe, disk] + [e for e in listed if e not in (pxe, disk)]
    new_numbers = [e.number for e in new] + [n for n in order if n not in entries]
    (var,) = [v for v in live_variables(store) if v.name == "BootOrder"]
    store[var.data_offset : var.data_offset + var.data_size] = struct.pack(
        f"<{len(new_numbers)}H", *new_numbers
    )
    return new
