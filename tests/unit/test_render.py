"""The box-specific PXE config (SPEC §2): golden files, and no value can add a line or directive."""

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from controller.core.render import render_box_config
from schema.desired import DesiredState
from schema.layout import parse_managed_header

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
# Mostly characters a PXE config accepts, plus the ones an injection needs (newline, space, tab).
VALUES = st.one_of(
    st.text(alphabet="abAZ09._-/=:,+@ \n\tKERNELAPPEND", min_size=1, max_size=24),
    st.text(st.characters(min_codepoint=0, max_codepoint=127), min_size=1, max_size=24),
)


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


@pytest.mark.parametrize(
    "field",
    ["kernel", "initrd", "nfs_server", "nfsroot", "extra_args", "device", "request", "name"],
)
@settings(max_examples=100, suppress_health_check=[HealthCheck.filter_too_much])
@given(value=VALUES)
def test_no_accepted_value_adds_a_line_or_directive(field: str, value: str) -> None:
    site, box = _with(field, value)
    try:
        text = render(site, box, "0123456789ab")
    except ValidationError:
        assume(False)
        return
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
