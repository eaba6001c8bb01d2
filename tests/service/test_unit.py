"""The systemd unit installed into the maintenance root (onbox/systemd/)."""

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

import onbox

UNIT = Path(onbox.__file__).parent / "systemd" / "testbox-maintenance.service"


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser


def test_unit_is_a_oneshot_after_network_and_shares_with_output_to_console() -> None:
    u = unit()
    assert u["Service"]["Type"] == "oneshot"
    assert u["Service"]["ExecStart"] == "/usr/local/bin/testbox-maintenance"
    assert u["Service"]["StandardOutput"] == "journal+console"
    after = u["Unit"]["After"].split()
    assert "network-online.target" in after
    assert r"mnt-testbox\x2dbackup.mount" in after and r"mnt-testbox\x2dtftp.mount" in after
    assert "Requires" not in u["Unit"]  # a failed mount must not stop the service (it retries)
    assert u["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    # The binary exists only inside the maintenance root: verify a copy pointing at /bin/true.
    copy = tmp_path / UNIT.name
    copy.write_text(
        UNIT.read_text().replace("/usr/local/bin/testbox-maintenance", shutil.which("true") or "")
    )
    done = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
