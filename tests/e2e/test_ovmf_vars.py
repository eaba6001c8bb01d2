"""The UEFI box's firmware setup without QEMU: BootOrder rewritten in an edk2 variable store.

A store built here the way edk2 lays it out (firmware volume header, authenticated variable
store header, variables with a stale BootOrder copy before the live one), with OVMF's boot
entries of a box: UiApp, the disk, PXEv4, HTTPv4, the EFI shell. Debian's empty
OVMF_VARS_4M.fd is read too, when installed.
"""

import struct
import uuid

import pytest

from tests.e2e import ovmf

GLOBAL = uuid.UUID("8be4df61-93ca-11d2-aa0d-00e098032b8c").bytes_le
END = bytes([0x7F, 0xFF, 4, 0])


def node(kind: int, subtype: int, body: bytes = b"") -> bytes:
    return struct.pack("<BBH", kind, subtype, 4 + len(body)) + body


PCI_ROOT = node(2, 1, bytes(8))
FV_APP = node(4, 7, bytes(16)) + node(4, 6, bytes(16))
NIC = PCI_ROOT + node(1, 1, b"\0\3") + node(3, 11, bytes(33))  # PciRoot/Pci(3)/MAC
IPV4 = node(3, 12, bytes(23))
PATHS = {
    "UiApp": FV_APP,
    "UEFI Misc Device": PCI_ROOT + node(1, 1, b"\0\4"),
    "UEFI PXEv4 (MAC:525400123456)": NIC + IPV4,
    "UEFI HTTPv4 (MAC:525400123456)": NIC + IPV4 + node(3, 24),  # .../Uri()
    "EFI Internal Shell": FV_APP,
}


def load_option(description: str, path: bytes) -> bytes:
    path += END
    return struct.pack("<IH", 1, len(path)) + (description + "\0").encode("utf-16-le") + path


def variable(name: str, data: bytes, state: int = 0x3F) -> bytes:
    encoded = (name + "\0").encode("utf-16-le")
    header = struct.pack(
        "<HBBIQ16sIII", 0x55AA, state, 0, 7, 0, bytes(16), 0, len(encoded), len(data)
    )
    raw = header + GLOBAL + encoded + data
    return raw + bytes(-len(raw) % 4)


def store(variables: list[bytes]) -> bytearray:
    fv_header = bytearray(0x48)
    struct.pack_into("<H", fv_header, 0x30, len(fv_header))
    body = b"".join(variables)
    size = 28 + len(body) + 64
    varstore = ovmf._AUTH_VARSTORE + struct.pack("<IBBHI", size, 0x5A, 0xFE, 0, 0)
    return bytearray(bytes(fv_header) + varstore + body + b"\xff" * 64)


def box_store() -> bytearray:
    names = list(PATHS)
    options = [variable(f"Boot{i:04X}", load_option(n, PATHS[n])) for i, n in enumerate(names)]
    stale = variable("BootOrder", struct.pack("<2H", 0, 1), state=0x3C)  # superseded copy
    # OVMF's order after its first boot with QEMU bootindex: the NIC's entries, the disk, ...
    live = variable("BootOrder", struct.pack("<5H", 2, 3, 1, 0, 4))
    return store([stale, *options, live])


def test_boot_entries_are_read_with_their_kind() -> None:
    order, entries = ovmf.boot_entries(box_store())
    assert order == [2, 3, 1, 0, 4]
    assert entries[2].ipv4_pxe and entries[2].network
    assert entries[3].network and not entries[3].ipv4_pxe  # HTTP boot
    assert not entries[1].network and not entries[1].firmware_volume  # the disk
    assert entries[0].firmware_volume and entries[4].firmware_volume


def test_network_then_disk_rewrites_only_the_live_boot_order() -> None:
    data = box_store()
    before = bytes(data)
    new = ovmf.network_then_disk(data)
    assert [e.number for e in new] == [2, 1, 3, 0, 4]
    assert ovmf.boot_entries(data)[0] == [2, 1, 3, 0, 4]
    assert len(data) == len(before)
    changed = [i for i, (a, b) in enumerate(zip(before, data, strict=True)) if a != b]
    (live,) = [v for v in ovmf.live_variables(data) if v.name == "BootOrder"]
    assert changed and all(live.data_offset <= i < live.data_offset + 10 for i in changed)


def test_a_store_that_is_not_edk2s_is_refused() -> None:
    with pytest.raises(ValueError, match="not an edk2"):
        list(ovmf.live_variables(bytearray(0x1000)))


@pytest.mark.skipif(not ovmf.OVMF_VARS.is_file(), reason="Debian package ovmf not installed")
def test_debians_empty_vars_file_has_no_boot_entries_yet() -> None:
    order, entries = ovmf.boot_entries(ovmf.OVMF_VARS.read_bytes())
    assert order == [] and entries == {}
