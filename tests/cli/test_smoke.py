"""A few runs of the installed `testboxctl` console script: the entry point itself works.

Everything else in tests/cli runs in process (`tests.cli.runner.run_cli`); these prove that the
script an operator runs maps errors and exit codes the same way.
"""

from pathlib import Path

import pytest

from tests.cli.runner import run_cli_subprocess


@pytest.mark.slow
def test_lab_dry_run_then_reconcile_through_the_script(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    assert run_cli_subprocess("init", "--lab", lab).returncode == 0
    desired = lab / "desired.yaml"
    assert run_cli_subprocess("validate", "-f", desired).returncode == 0
    assert run_cli_subprocess("reconcile", "--dry-run", "-f", desired).returncode == 2
    assert run_cli_subprocess("reconcile", "-f", desired).returncode == 0
    assert run_cli_subprocess("reconcile", "--dry-run", "-f", desired).returncode == 0


def test_usage_error_through_the_script(tmp_path: Path) -> None:
    done = run_cli_subprocess("reconcile", "--bogus", cwd=tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("Usage: testboxctl reconcile")


def test_one_line_error_through_the_script(tmp_path: Path) -> None:
    done = run_cli_subprocess("validate", "-f", tmp_path / "missing.yaml")
    assert done.returncode == 1
    assert done.stderr.startswith("testboxctl: error: ")
    assert len(done.stderr.strip().splitlines()) == 1
