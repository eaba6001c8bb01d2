"""inventory.json from /proc and /sys: what a real box exposes, and nothing failing when a
VM exposes less (no DMI, no serials)."""

import io
import zipfile
from pathlib import Path

from onbox.service.info import info_zip
from onbox.service.inventory import collect_inventory


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_inventory_of_a_box(tmp_path: Path) -> None:
    proc, sys = tmp_path / "proc", tmp_path / "sys"
    cpu = "processor\t: {n}\nmodel name\t: Intel(R) Xeon(R) E-2176G\n\n"
    write(proc / "cpuinfo", "".join(cpu.format(n=n) for n in range(4)))
    write(proc / "meminfo", "MemTotal:       16318412 kB\nMemFree: 1 kB\n")
    write(sys / "class/net/lo/address", "00:00:00:00:00:00\n")
    write(sys / "class/net/eno1/address", "52:54:00:12:34:56\n")
    write(sys / "class/dmi/id/sys_vendor", "Dell Inc.\n")
    write(sys / "class/dmi/id/product_name", "PowerEdge T140\n")
    disk = tmp_path / "sda.img"
    disk.write_bytes(bytes(8192))
    inv = collect_inventory("10.0.2.15", "tb1", {"sda": disk}, proc=proc, sys=sys)
    assert (inv.cpu.model, inv.cpu.count) == ("Intel(R) Xeon(R) E-2176G", 4)
    assert inv.memory_bytes == 16318412 * 1024
    assert [(n.name, n.mac) for n in inv.nics] == [("eno1", "52:54:00:12:34:56")]
    assert (inv.dmi.vendor, inv.dmi.product, inv.dmi.serial) == (
        "Dell Inc.",
        "PowerEdge T140",
        None,
    )
    assert [(d.name, d.size, d.model) for d in inv.disks] == [("sda", 8192, "file")]


def test_inventory_of_an_empty_machine_has_nones(tmp_path: Path) -> None:
    inv = collect_inventory("10.0.2.15", "unknown", {}, proc=tmp_path, sys=tmp_path)
    assert inv.cpu.count == 0 and inv.memory_bytes is None and inv.nics == []


def test_info_zip_skips_raw_event_log(tmp_path: Path) -> None:
    proc, firmware = tmp_path / "proc", tmp_path / "firmware"
    write(proc / "cpuinfo", "processor : 0\n")
    write(firmware / "acpi/tables/DSDT", "dsdt")
    write(firmware / "acpi/tables/data/BERT", "bert")
    write(firmware / "tpm/tpm0/binary_bios_measurements", "m")
    write(firmware / "efi/tpm/raw_event_log", "big")
    with zipfile.ZipFile(io.BytesIO(info_zip(proc, firmware))) as zf:
        assert sorted(zf.namelist()) == [
            "proc/cpuinfo",
            "sys/firmware/acpi/tables/DSDT",
            "sys/firmware/acpi/tables/data/BERT",
            "sys/firmware/tpm/tpm0/binary_bios_measurements",
        ]
