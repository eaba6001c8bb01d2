"""`testboxctl build-maintenance-root` through the real entry point: the refusals that must
happen before anything is built (the build itself runs in .ci/e2e-prepare and tests/e2e)."""

import subprocess
import sys
from pathlib import Path

TESTBOXCTL = str(Path(sys.executable).parent / "testboxctl")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TESTBOXCTL, "build-maintenance-root", *args], capture_output=True, text=True, check=False
    )


def test_refuses_to_replace_a_directory_it_did_not_build(tmp_path: Path) -> None:
    out = tmp_path / "precious"
    out.mkdir()
    (out / "data.txt").write_text("keep me")
    done = run("--out", str(out), "--cache", str(tmp_path / "cache"))
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert "not a maintenance root built by testboxctl" in done.stderr
    assert (out / "data.txt").read_text() == "keep me"
    assert not (tmp_path / "cache").exists()  # nothing was started


def test_refuses_a_file_as_out(tmp_path: Path) -> None:
    out = tmp_path / "file"
    out.write_text("x")
    done = run("--out", str(out), "--cache", str(tmp_path / "cache"))
    assert done.returncode == 1
    assert "exists and is not a directory" in done.stderr
