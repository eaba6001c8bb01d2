"""The `command` power driver: argv with placeholders, exactly; no shell; a timeout that kills.

The command here is a small Python script that records the argv it got, so the test sees what a
real `ssh root@{ip} reboot` would have been handed.
"""

import json
import os
import sys
import time
from pathlib import Path

import pytest

from controller.io.power import PowerError
from controller.io.power.command import CommandDriver, command_argv
from schema.power import PowerConfig, PowerTarget
from tests.power.lab import make_lab

RECORDER = """import json, sys
open(sys.argv[1], "w").write(json.dumps(sys.argv[2:]))
print("rebooting", sys.argv[2])
"""


def target(command: list[str], *, timeout: str = "30s", mac: str | None = None) -> PowerTarget:
    return PowerTarget(
        name="tb-lnx-07",
        ip="10.0.2.15",
        mac=mac,
        power=PowerConfig(method="command", command=command, timeout=timeout),
        cycle=1,
        attempts_seen=0,
    )


def test_placeholders_are_filled_in_exactly() -> None:
    t = target(
        ["ssh", "root@{ip}", "{name}", "{hexip}", "{mac}", "x{{y}}"], mac="52:54:00:12:34:56"
    )
    assert command_argv(t) == [
        "ssh",
        "root@10.0.2.15",
        "tb-lnx-07",
        "0A00020F",
        "52:54:00:12:34:56",
        "x{y}",
    ]
    with pytest.raises(PowerError, match=r"uses \{mac\} but the box has no mac"):
        command_argv(target(["echo", "{mac}"]))


def test_reconcile_runs_the_argv_without_a_shell(tmp_path: Path) -> None:
    script = tmp_path / "record.py"
    script.write_text(RECORDER)
    out = tmp_path / "argv.json"
    marker = tmp_path / "shell-ran"
    lab = make_lab(tmp_path)
    command = json.dumps(
        [sys.executable, str(script), str(out), "{name}", "{ip};touch " + str(marker), "$(id)"]
    )
    power = f"{{method: command, command: {command}}}"
    lab.want(f"{{name: tb1, ip: 10.0.2.15, action: backup, power: {power}}}")
    done = lab.reconcile(env={})  # a command needs no credentials
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text()) == ["tb1", "10.0.2.15;touch " + str(marker), "$(id)"]
    assert not marker.exists()
    record = lab.power("10.0.2.15")
    assert record["method"] == "command" and record["outcome"] == "cycled"
    box_log = (lab.backup / "10.0.2.15" / "maintenance.log").read_text()
    assert "info: power command output: rebooting tb1" in box_log


def test_timeout_kills_the_command_and_its_children(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    # A shell that leaves a background child behind: both must die with the group.
    t = target(["sh", "-c", f"sleep 60 & echo $! > {pids}; echo $$ >> {pids}; wait"], timeout="1s")
    started = time.monotonic()
    with pytest.raises(PowerError, match="timed out after 1s; killed") as caught:
        CommandDriver().power_cycle(t, "0123456789ab")
    assert time.monotonic() - started < 10
    assert caught.value.unreachable
    for pid in map(int, pids.read_text().split()):
        deadline = time.monotonic() + 5
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid), f"process {pid} survived the timeout"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_a_failing_command_is_a_failure_with_its_output(tmp_path: Path) -> None:
    t = target(["sh", "-c", "echo no route to host >&2; exit 3"])
    with pytest.raises(PowerError, match="exit 3: no route to host"):
        CommandDriver().power_cycle(t, "0123456789ab")
    with pytest.raises(PowerError, match="cannot run"):
        CommandDriver().power_cycle(target([str(tmp_path / "missing")]), "0123456789ab")
    assert os.path.exists("/bin/sh")
