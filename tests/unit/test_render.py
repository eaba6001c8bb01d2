"""The box-specific PXE config (contract §2): golden files; no value adds a line or directive."""

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from controller.core.render import render_box_config
from schema.desired import DesiredState
from schema.layout import box_name_collision, parse_managed_header
from schema.types import (
    HOST_LABEL_PATTERN,
    KERNEL_ARG_PATTERN,
    NET_DEVICE_PATTERN,
    PATH_SEGMENT_PATTERN,
    REQUEST_TOKEN_PATTERN,
)

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "render"

SPEC_SITE: dict[str, Any] = {
    "tftp_root": "/mnt/testbox-tftp",
    "backup_root": "/mnt/testbox-backup",
    "maintenance": {
        "kernel": "maintenance-boot/vmlinuz-amd64",
        "initrd": "maintenance-boot/initrd.img-amd64",
        "nfs_server": "10.165.98.101",
        "nfsroot": "/export/testbox-nfsroot",
        "network": {
            "mode": "static",
            "gateway": "10.165.98.1",
            "netmask": "255.255.254.0",
            "device": "eth0",
        },
    },
}
DHCP_SITE: dict[str, Any] = {
    **SPEC_SITE,
    "maintenance": {
        **SPEC_SITE["maintenance"],
        "nfs_server": "nfs.lab.example",
        "network": {"mode": "dhcp"},
        "extra_args": ["console=ttyS0,115200", "quiet"],
    },
}


def render(site: dict[str, Any], box: dict[str, Any], rid: str) -> str:
    state = DesiredState.model_validate({"site": site, "boxes": [box]})
    return render_box_config(state.site, state.effective_boxes()[0], rid)


@pytest.mark.parametrize(
    ("golden", "site", "box", "rid"),
    [
        (
            "static-backup.cfg",
            SPEC_SITE,
            {"name": "tb-w10-01", "ip": "10.165.98.220", "action": "backup"},
            "0123456789ab",
        ),
        (
            "dhcp-rescue-extra-args.cfg",
            DHCP_SITE,
            {"name": "tb-lnx-07", "ip": "10.165.98.221", "action": "rescue"},
            "fedcba987654",
        ),
        (
            "static-backup-uefi.cfg",
            SPEC_SITE,
            {"name": "tb-uefi-02", "ip": "10.165.98.222", "action": "backup", "firmware": "uefi"},
            "0123456789ab",
        ),
        (
            "dhcp-restore-uefi-from-defaults.cfg",
            {**DHCP_SITE, "defaults": {"firmware": "uefi"}},
            {"name": "tb-uefi-03", "ip": "10.165.98.223", "action": "restore", "image": "latest"},
            "a1b2c3d4e5f6",
        ),
    ],
)
def test_rendered_config_matches_golden_file(
    golden: str, site: dict[str, Any], box: dict[str, Any], rid: str
) -> None:
    assert render(site, box, rid) == (GOLDEN / golden).read_text()


def test_rendering_is_deterministic_and_marked_managed() -> None:
    box = {"name": "tb1", "ip": "10.0.0.1", "action": "restore", "image": "latest"}
    text = render(SPEC_SITE, box, "00000000abcd")
    assert text == render(SPEC_SITE, box, "00000000abcd")
    assert parse_managed_header(text) == (True, "00000000abcd")
    assert "testbox-action-restore testbox-request=00000000abcd" in text


def test_firmware_bios_by_default_box_overrides_site_default() -> None:
    def firmware(defaults: dict[str, Any], box: dict[str, Any]) -> str:
        site = {**SPEC_SITE, "defaults": defaults}
        state = DesiredState.model_validate({"site": site, "boxes": [box]})
        return state.effective_boxes()[0].firmware

    box = {"name": "tb1", "ip": "10.0.0.1"}
    assert firmware({}, box) == "bios"
    assert firmware({"firmware": "uefi"}, box) == "uefi"
    assert firmware({"firmware": "uefi"}, {**box, "firmware": "bios"}) == "bios"
    assert firmware({}, {**box, "firmware": "uefi"}) == "uefi"
    with pytest.raises(ValidationError, match="firmware"):
        firmware({}, {**box, "firmware": "efi"})


def test_uefi_config_differs_from_bios_only_in_the_module_path() -> None:
    box = {"name": "tb1", "ip": "10.0.0.1", "action": "backup"}
    bios = render(SPEC_SITE, box, "0123456789ab").splitlines()
    uefi = render(SPEC_SITE, {**box, "firmware": "uefi"}, "0123456789ab").splitlines()
    assert [(b, u) for b, u in zip(bios, uefi, strict=True) if b != u] == [
        ("PATH bios", "PATH efi64")
    ]


def test_action_none_has_no_config() -> None:
    with pytest.raises(ValueError, match="action none"):
        render(SPEC_SITE, {"name": "tb1", "ip": "10.0.0.1"}, "0123456789ab")


DIRECTIVES = ("PATH", "DEFAULT", "LABEL", "MENU", "KERNEL", "APPEND", "LOCALBOOT", "INCLUDE")
# Accepted values are drawn from the types' own patterns (schema.types), so every example is one
# the schema accepts: no filtering. Hostile values (newlines, spaces, directives) are tried by
# test_a_value_that_could_add_a_line_is_rejected below.
_LABEL = st.from_regex(HOST_LABEL_PATTERN, fullmatch=True)
_SEGMENT = st.from_regex(PATH_SEGMENT_PATTERN, fullmatch=True).filter(
    lambda seg: seg not in (".", "..")
)
_PATH = st.lists(_SEGMENT, min_size=1, max_size=3).map("/".join)
ACCEPTED: dict[str, st.SearchStrategy[str]] = {
    "kernel": _PATH,
    "initrd": _PATH,
    # An all-digit name is read as an IPv4 address (schema.types._server): a few such draws skip.
    "nfs_server": st.lists(_LABEL, min_size=1, max_size=3)
    .map(".".join)
    .filter(lambda n: not n.replace(".", "").isdigit()),
    "nfsroot": _PATH,
    # The x- prefix keeps clear of the reserved arguments (initrd=, root=, testbox-...).
    "extra_args": st.from_regex(KERNEL_ARG_PATTERN, fullmatch=True).map(lambda a: "x-" + a),
    "device": st.from_regex(NET_DEVICE_PATTERN, fullmatch=True),
    "request": st.from_regex(REQUEST_TOKEN_PATTERN, fullmatch=True),
    "name": st.lists(_LABEL, min_size=1, max_size=3)
    .map(".".join)
    .filter(lambda n: box_name_collision(n) is None and len(n) <= 253),
}
# What an injection needs: a newline, a space, a tab, a directive after one.
HOSTILE = ["a\nAPPEND init=/bin/sh", "a b", "a\tb", "a\rLABEL x", "\nKERNEL x", "a\x00"]


def _with(field: str, value: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """SPEC's site and a backup box, with one value replaced."""
    maintenance = dict(SPEC_SITE["maintenance"])
    box: dict[str, Any] = {"name": "tb1", "ip": "10.0.0.1", "action": "backup"}
    if field == "extra_args":
        maintenance["extra_args"] = [value]
    elif field == "device":
        maintenance["network"] = {**maintenance["network"], "device": value}
    elif field == "nfsroot":
        maintenance["nfsroot"] = "/" + value
    elif field in maintenance:
        maintenance[field] = value
    else:
        box[field] = value
    return {**SPEC_SITE, "maintenance": maintenance}, box


@pytest.mark.parametrize("field", list(ACCEPTED))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_no_accepted_value_adds_a_line_or_directive(field: str, data: st.DataObject) -> None:
    value = data.draw(ACCEPTED[field], label=field)
    site, box = _with(field, value)
    text = render(site, box, "0123456789ab")
    lines = text.splitlines()
    assert len(lines) == 10 and text.endswith("\n")
    assert [line.split()[0] for line in lines[2:]] == [
        "PATH",
        "DEFAULT",
        "LABEL",
        "MENU",
        "KERNEL",
        "APPEND",
        "LABEL",
        "LOCALBOOT",
    ]
    assert len(lines[6].split()) == 2  # KERNEL <one path>
    assert all(arg.split("=")[0] not in DIRECTIVES for arg in lines[7].split()[1:])
    assert all(32 <= ord(c) < 127 for c in text.replace("\n", ""))


@pytest.mark.parametrize("field", list(ACCEPTED))
@pytest.mark.parametrize("value", HOSTILE)
def test_a_value_that_could_add_a_line_is_rejected(field: str, value: str) -> None:
    site, box = _with(field, value)
    with pytest.raises(ValidationError):
        render(site, box, "0123456789ab")
