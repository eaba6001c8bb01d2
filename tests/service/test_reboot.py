"""How a maintenance boot ends: reboot after success, pause then reboot after a failure (the
retry), stay up for rescue; `--no-reboot` neither pauses nor reboots.

`reboot` and `systemctl` are stand-ins on PATH that record their call (see lab.reboot_shims).
"""

import time
from pathlib import Path

import pytest

from tests.service.lab import BoxLab, make_disk, reboot_shims

MiB = 1 << 20
REBOOTS = ("reboot -f", "systemctl reboot")


def calls(shims: Path) -> list[str]:
    path = shims / "calls"
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def shims(tmp_path: Path) -> Path:
    return reboot_shims(tmp_path / "shims")


def test_success_reboots_at_once(lab: BoxLab, shims: Path) -> None:
    request = lab.request("refresh-info")
    started = time.monotonic()
    run = lab.run(
        lab.arm(request),
        disks={"sda": make_disk(lab.root / "sda.img", MiB)},
        reboot_shims=shims,
        retry_pause=30,
    )
    assert run.code == 0, run.stderr
    assert time.monotonic() - started < 20  # no pause after a success
    assert len(calls(shims)) == 1 and calls(shims)[0] in REBOOTS
    assert not lab.config.exists()


@pytest.mark.slow
def test_failure_pauses_then_reboots_with_config_kept(lab: BoxLab, shims: Path) -> None:
    request = lab.request("restore")  # no image: fails
    started = time.monotonic()
    run = lab.run(
        lab.arm(request),
        disks={"sda": make_disk(lab.root / "sda.img", MiB)},
        reboot_shims=shims,
        retry_pause=1.5,
    )
    assert run.code == 1
    assert time.monotonic() - started >= 1.5
    assert "pausing 1.5 s before rebooting to retry" in run.stdout
    assert len(calls(shims)) == 1 and calls(shims)[0] in REBOOTS
    assert lab.config.exists()


def test_rescue_stays_up(lab: BoxLab, shims: Path) -> None:
    request = lab.request("rescue")
    run = lab.run(
        lab.arm(request), reboot_shims=shims, disks={"sda": make_disk(lab.root / "a", MiB)}
    )
    assert run.code == 0, run.stderr
    assert calls(shims) == []


def test_no_reboot_skips_pause_and_reboot(lab: BoxLab) -> None:
    request = lab.request("restore")
    started = time.monotonic()
    run = lab.run(
        lab.arm(request), disks={"sda": make_disk(lab.root / "sda.img", MiB)}, retry_pause=60
    )
    assert run.code == 1
    assert time.monotonic() - started < 30
    assert "--no-reboot: not rebooting" in run.stdout
