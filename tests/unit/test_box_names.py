"""Box names that collide with the share layout are validation errors, with file and line.

A box's name is the name of its hostname file in `<ip>/` on the backup share, so `results`,
`images`, `sda.gz` and the like would put a file where the layout needs its own (issue 8).
A long but valid host name must still be accepted.
"""

from pathlib import Path

import pytest

from controller.desired.load import load_desired
from controller.errors import DesiredStateError
from controller.tools.lab import SAMPLE_DESIRED

SAMPLE = SAMPLE_DESIRED.format(name="lab")
LONG_NAME = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 59])  # 251 characters


def _load_with_name(tmp_path: Path, name: str) -> Path:
    path = tmp_path / "desired.yaml"
    path.write_text(SAMPLE.replace("name: tb-idle-03", f"name: {name}"))
    return path


@pytest.mark.parametrize(
    "name",
    [
        "results",
        "images",
        "IMAGES",
        "sda.gz",
        "sdb.raw.gz",
        "sda.gz.imported",
        "store",
        "maintenance.log",
        "maintenance-output.log",
        "request.json",
        "armed.json",
        "power.json",
        "disk-devices.lst",
        "inventory.json",
        "testbox-info.txt",
        "testbox-backup",
        "testboxctl.lock",
    ],
)
def test_a_box_named_like_a_layout_file_is_an_error_at_its_line(tmp_path: Path, name: str) -> None:
    path = _load_with_name(tmp_path, name)
    with pytest.raises(DesiredStateError) as caught:
        load_desired(path)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{path}:17: boxes[2].name: ")
    assert "collides with" in problem


def test_disks_listed_twice_are_an_error_at_their_line(tmp_path: Path) -> None:
    path = tmp_path / "desired.yaml"
    path.write_text(SAMPLE.replace("disks: [sda, sdb]", "disks: [sdb, sdb]"))
    with pytest.raises(DesiredStateError) as caught:
        load_desired(path)
    assert caught.value.problems == [f"{path}:16: boxes[1].disks: listed twice"]


def test_a_valid_250_character_host_name_is_accepted(tmp_path: Path) -> None:
    assert len(LONG_NAME) >= 250
    loaded = load_desired(_load_with_name(tmp_path, LONG_NAME))
    assert loaded.state.boxes[2].name == LONG_NAME


def test_names_that_only_resemble_layout_names_are_fine(tmp_path: Path) -> None:
    for name in ("results-1", "images2", "sda", "store.lab", "sdz9.gz"):
        assert load_desired(_load_with_name(tmp_path, name)).state.boxes[2].name == name
