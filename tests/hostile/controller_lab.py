"""Three boxes on temp shares next to an "outside" tree, for the controller's hostile tests.

One box (the victim, 10.9.9.9) gets the hostile entry; two healthy boxes must keep converging.
The outside tree holds what a hostile link points at: files named like the share's own files,
with a secret in them that must never show up in a plan, a saved plan or a status. Every
command runs in process (`controller.cli.run`, the same error mapping an operator sees) under
an alarm, so a hang fails the test instead of blocking the suite.
"""

import json
import os
from pathlib import Path

import pytest

from controller.cli import run
from controller.io.shares import Shares
from schema.layout import PXE_CFG_DIR, hex_ip
from schema.request import request_id
from tests.hostile.guards import deadline, snapshot
from tests.lab_builder import SITE, desired, make_shares, write_desired_file

VICTIM = "10.9.9.9"
HEALTHY = ("10.9.9.10", "10.9.9.11")
SECRET = "host-secret-7f3a"
OLD = 1_600_000_000


class ControllerLab:
    def __init__(self, tmp: Path, max_attempts: int = 3) -> None:
        self.tmp = tmp
        self.shares: Shares = make_shares(tmp / "lab")
        boxes = [
            {"name": f"tb-{ip.rsplit('.', 1)[1]}", "ip": ip, "action": "backup"}
            for ip in (VICTIM, *HEALTHY)
        ]
        site = {
            **SITE,
            "defaults": {
                "disks": ["sda"],
                "retention": {"keep_last": 1},
                "max_attempts": max_attempts,
            },
        }
        self.state = desired(*boxes, site=site)
        self.desired = write_desired_file(tmp / "desired.yaml", self.state, self.shares)
        self.outside = tmp / "outside"
        for sub in ("", "results", "images/20260101T000000Z-aaaaaa"):
            d = self.outside / sub
            d.mkdir(parents=True, exist_ok=True)
            for name in ("request.json", "disk-devices.lst", "maintenance.log", "commit.json"):
                (d / name).write_text(f'{{"secret": "{SECRET}"}}\n')
            (d / f"{self.rid(VICTIM)}.json").write_text(f'{{"secret": "{SECRET}"}}\n')
            (d / ".request.json.0123456789ab.tmp").write_text(SECRET)
            os.utime(d / ".request.json.0123456789ab.tmp", (OLD, OLD))
        self.before = snapshot(self.outside)

    # -- facts ------------------------------------------------------------------------------
    def rid(self, ip: str) -> str:
        box = next(b for b in self.state.effective_boxes() if b.ip == ip)
        rid = request_id(box)
        assert rid is not None
        return rid

    def box(self, ip: str = VICTIM) -> Path:
        return self.shares.backup / ip

    def config(self, ip: str = VICTIM) -> Path:
        return self.shares.tftp / PXE_CFG_DIR / hex_ip(ip)

    # -- hostile entries --------------------------------------------------------------------
    def replace(self, path: Path) -> Path:
        """Make room for a hostile entry at `path` (a directory there is moved aside)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir() and not path.is_symlink():
            os.rename(path, path.with_name(path.name + ".real"))
        elif path.exists() or path.is_symlink():
            path.unlink()
        return path

    def link(self, path: Path, to: Path) -> None:
        self.replace(path).symlink_to(to)

    def fifo(self, path: Path) -> None:
        os.mkfifo(self.replace(path))

    def directory(self, path: Path) -> None:
        self.replace(path).mkdir()

    def write(self, path: Path, data: bytes) -> None:
        self.replace(path).write_bytes(data)

    # -- commands ---------------------------------------------------------------------------
    def cli(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
        """Run testboxctl in process; an unmapped exception fails the test (a traceback)."""
        with deadline():
            code = run(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    def reconcile(self, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
        return self.cli(capsys, "reconcile", "-f", str(self.desired), "--lock-timeout", "1", *extra)

    def pending_ips(self, capsys: pytest.CaptureFixture[str]) -> set[str]:
        """Boxes a dry run would still change (operations only, notices aside)."""
        code, out, err = self.cli(
            capsys, "reconcile", "-f", str(self.desired), "--dry-run", "--json"
        )
        assert code in (0, 2), err
        return {op["ip"] for op in json.loads(out)["operations"]}

    def outside_unchanged(self) -> None:
        assert snapshot(self.outside) == self.before
