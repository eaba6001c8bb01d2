"""The contract's naming rules and request ids."""

import pytest

from schema.desired import Box, DesiredState
from schema.layout import hex_ip, parse_managed_header
from schema.request import request_id
from tests.lab_paths import MINIMAL_SITE


@pytest.mark.parametrize(
    ("ip", "hexname"),
    [("10.0.2.15", "0A00020F"), ("10.165.98.220", "0AA562DC"), ("0.0.0.0", "00000000")],
)
def test_hex_ip(ip: str, hexname: str) -> None:
    assert hex_ip(ip) == hexname


def test_request_id_is_stable_and_token_changes_it() -> None:
    state = DesiredState.model_validate(
        {"site": MINIMAL_SITE, "boxes": [{"name": "tb1", "ip": "10.0.0.5", "action": "backup"}]}
    )
    box = state.effective_boxes()[0]
    rid = request_id(box)
    assert rid is not None and len(rid) == 12
    assert request_id(box) == rid
    again = state.effective(Box(name="tb1", ip="10.0.0.5", action="backup", request="2026-11-25"))
    assert request_id(again) != rid


def test_managed_header() -> None:
    text = "# managed-by: testboxctl\n# request: abcdef012345\nPATH bios\n"
    assert parse_managed_header(text) == (True, "abcdef012345")
    assert parse_managed_header("PATH bios\n") == (False, None)
