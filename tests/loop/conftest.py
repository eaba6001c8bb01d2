"""The whole loop on one machine: the controller arms a box on temp shares, the on-box service
runs with the armed config's APPEND line as its kernel command line and a file as its disk,
and the controller observes the result. Both sides run through their real entry points."""

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cli.runner import testboxctl_command
from tests.lab_paths import LabPaths
from tests.sample_site import one_box_yaml
from tests.service.lab import service_command


@dataclass
class Done:
    code: int
    stdout: str
    stderr: str


def _run(argv: list[str], cwd: Path) -> Done:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("TESTBOX_TFTP_ROOT", None)
    env.pop("TESTBOX_BACKUP_ROOT", None)
    done = subprocess.run(
        argv, check=False, capture_output=True, text=True, timeout=300, cwd=cwd, env=env
    )
    return Done(done.returncode, done.stdout, done.stderr)


@dataclass
class Loop(LabPaths):
    """A lab made by `testboxctl init --lab`, with one box whose desired state tests rewrite."""

    name: str = "tb-loop-01"

    def want(self, action: str, *, max_attempts: int = 3, extra: str = "") -> None:
        self.desired.write_text(
            one_box_yaml(
                self.name, self.ip, action, disk="sda", max_attempts=max_attempts, extra=extra
            )
        )

    def ctl(self, *args: str) -> Done:
        return _run([*testboxctl_command(), *args], self.root)

    def reconcile(self, *args: str) -> Done:
        return self.ctl("reconcile", "-f", str(self.desired), *args)

    def status(self) -> dict[str, Any]:
        done = self.ctl("status", "-f", str(self.desired), "--json")
        assert done.code == 0, done.stderr
        boxes = json.loads(done.stdout)["boxes"]
        return next(b for b in boxes if b["ip"] == self.ip)

    def append_line(self) -> str:
        """The APPEND line of the armed config: what the maintenance kernel's cmdline holds."""
        for line in self.config.read_text().splitlines():
            if line.strip().startswith("APPEND "):
                return line.strip()[len("APPEND ") :]
        raise AssertionError(f"no APPEND line in {self.config}")

    def boot(self, disk: Path) -> Done:
        """One maintenance boot of the box: the service with the armed command line."""
        return _run(
            [
                *service_command(),
                "--no-reboot",
                "--cmdline",
                self.append_line(),
                "--tftp-root",
                str(self.tftp),
                "--backup-root",
                str(self.backup),
                "--ip",
                self.ip,
                "--disk",
                f"sda={disk}",
            ],
            self.root,
        )


@pytest.fixture
def loop(tmp_path: Path) -> Loop:
    root = tmp_path / "lab"
    done = _run([*testboxctl_command(), "init", "--lab", str(root)], tmp_path)
    assert done.code == 0, done.stderr
    return Loop(root)
