"""The imaging benchmark's command line, as an operator runs it: a wrong --dir is a one-line
usage error before any work (no traceback, nothing created)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_missing_dir_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.imaging", "--dir", str(missing), "--cold", "only"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert f"--dir {missing}: not an existing directory" in done.stderr
    assert "Traceback" not in done.stderr
    assert not missing.exists()
