"""Where one box's files are in a lab of two temp shares: the paths every lab fixture shares."""

from dataclasses import dataclass
from pathlib import Path

from schema.layout import PXE_CFG_DIR, hex_ip
from tests.sample_site import site

# The smallest valid `site:` of a desired state (network by DHCP), for tests that need one.
MINIMAL_SITE = site()  # tests/sample_site.py


@dataclass
class LabPaths:
    """A lab directory with `tftp/`, `backup/` and `desired.yaml`, and one box in it."""

    root: Path
    ip: str = "10.0.2.15"
    name: str = "tb-test-01"

    @property
    def tftp(self) -> Path:
        return self.root / "tftp"

    @property
    def backup(self) -> Path:
        return self.root / "backup"

    @property
    def desired(self) -> Path:
        return self.root / "desired.yaml"

    @property
    def box_dir(self) -> Path:
        return self.backup / self.ip

    @property
    def config(self) -> Path:
        return self.tftp / PXE_CFG_DIR / hex_ip(self.ip)
