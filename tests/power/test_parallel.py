"""Power cycles run in parallel with a bound: 48 boxes whose command takes 0.5 s each must not
take 48 x 0.5 s; with 16 workers they take about 3 rounds."""

import time
from pathlib import Path

import pytest

from tests.power.lab import make_lab

pytestmark = pytest.mark.slow


def test_48_boxes_cycle_in_about_three_rounds(tmp_path: Path) -> None:
    lab = make_lab(tmp_path)
    boxes = [
        f"{{name: tb{i:02d}, ip: 10.0.3.{i}, action: refresh-info, "
        "power: {method: command, command: [sleep, '0.5']}}"
        for i in range(1, 49)
    ]
    lab.want(*boxes)
    started = time.monotonic()
    done = lab.reconcile(env={})
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert all(lab.power(f"10.0.3.{i}")["outcome"] == "cycled" for i in range(1, 49))
    assert lab.log().count("power-cycled") == 48
    # Serial would be 24 s; 16 at a time is 3 rounds of 0.5 s plus the rest of the run.
    assert elapsed < 12, f"{elapsed:.1f} s"
    print(f"48 power cycles of 0.5 s each: reconcile took {elapsed:.2f} s")
