"""A lab for the power tests: `testboxctl init --lab`, boxes with `power:`, CLI in process."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schema.layout import POWER_FILE, PXE_CFG_DIR, hex_ip
from tests.cli.runner import CliResult, run_cli
from tests.sample_site import site_yaml

SITE = site_yaml(defaults={"disks": ["sda"], "max_attempts": 3}) + "boxes:\n"

CREDENTIALS = {
    "TESTBOX_CREDENTIALS_LAB_BMC_USERNAME": "tbadmin",
    "TESTBOX_CREDENTIALS_LAB_BMC_PASSWORD": "s3cret-pw",
}


@dataclass
class PowerLab:
    root: Path

    @property
    def desired(self) -> Path:
        return self.root / "desired.yaml"

    @property
    def backup(self) -> Path:
        return self.root / "backup"

    @property
    def tftp(self) -> Path:
        return self.root / "tftp"

    def want(self, *boxes: str) -> None:
        self.desired.write_text(SITE + "".join(f"  - {b}\n" for b in boxes))

    def reconcile(self, *args: str, env: dict[str, str] | None = None) -> CliResult:
        return run_cli(
            "reconcile", "-f", self.desired, *args, env=CREDENTIALS if env is None else env
        )

    def status(self, ip: str) -> dict[str, Any]:
        done = run_cli("status", "-f", self.desired, "--json")
        assert done.returncode == 0, done.stderr
        boxes: list[dict[str, Any]] = json.loads(done.stdout)["boxes"]
        return next(b for b in boxes if b["ip"] == ip)

    def power(self, ip: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.backup / ip / POWER_FILE).read_text())
        return data

    def config(self, ip: str) -> Path:
        return self.tftp / PXE_CFG_DIR / hex_ip(ip)

    def log(self) -> str:
        return (self.backup / "maintenance.log").read_text()


def make_lab(tmp_path: Path) -> PowerLab:
    root = tmp_path / "lab"
    done = run_cli("init", "--lab", root)
    assert done.returncode == 0, done.stderr
    return PowerLab(root)
