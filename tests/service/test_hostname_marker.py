"""The empty `<hostname>` marker file: any valid host name works, none can break the box dir."""

from pathlib import Path

import pytest

from onbox.service.info import write_info
from onbox.shareio import Share

pytestmark = pytest.mark.slow  # write_info runs lspci, dmidecode, fdisk, dmesg

# 250 characters, valid RFC 1123 (labels of at most 63), like the one in issue 8.
LONG = ".".join(["a" * 62] * 4)[:249] + "z"


def test_a_250_character_host_name_gets_its_marker(tmp_path: Path) -> None:
    assert len(LONG) == 250
    box = tmp_path / "box"
    box.mkdir()
    written = write_info(Share(box), "10.0.2.15", LONG, {})
    assert LONG in written.names
    assert (box / LONG).is_file()
    assert not [p for p in box.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("name", ["results", "images", "request.json", "sda.gz", "x.log"])
def test_a_host_name_that_collides_with_the_layout_writes_no_marker(
    tmp_path: Path, name: str
) -> None:
    box = tmp_path / "box"
    box.mkdir()
    written = write_info(Share(box), "10.0.2.15", name, {})
    assert name not in written.names
    assert "collides with the box directory's layout" in written.notes[0]
    assert not (box / name).exists() or name == "request.json"


def test_a_marker_that_is_a_link_is_left_alone(tmp_path: Path) -> None:
    box = tmp_path / "box"
    box.mkdir()
    outside = tmp_path / "outside"
    outside.write_text("precious\n")
    (box / "host1").symlink_to(outside)
    written = write_info(Share(box), "10.0.2.15", "host1", {})
    assert "is a symbolic link" in written.notes[0]
    assert outside.read_text() == "precious\n"
