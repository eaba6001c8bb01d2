"""The IPv4 fast path in schema.types accepts exactly what ipaddress calls canonical."""

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from schema.types import _ipv4

OCTETS = st.sampled_from(
    [
        "0",
        "00",
        "1",
        "01",
        "9",
        "10",
        "99",
        "100",
        "199",
        "200",
        "249",
        "250",
        "255",
        "256",
        "300",
        "010",
        " 1",
        "1\n",
        "٣",
        "-1",
        "",
    ]
)


def _reference(value: str) -> bool:
    try:
        return str(ipaddress.IPv4Address(value)) == value
    except ValueError:
        return False


def _accepted(value: str) -> bool:
    try:
        _ipv4(value)
    except ValueError:
        return False
    return True


@given(st.lists(OCTETS, min_size=3, max_size=5).map(".".join) | st.text(max_size=20))
def test_ipv4_fast_path_agrees_with_ipaddress(value: str) -> None:
    assert _accepted(value) == _reference(value)


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_every_canonical_address_is_accepted(number: int) -> None:
    assert _accepted(str(ipaddress.IPv4Address(number)))
