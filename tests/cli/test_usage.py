"""Usage errors: one usage message on stderr, no traceback, exit 1 (exit 2 means "changes found").

typer 0.29 vendors click as `typer._click`; catching only `click.ClickException` let every typo
end in a traceback (issue 13.7). Each kind of usage error click knows is tried here.
"""

from pathlib import Path

import pytest

from tests.cli.runner import run_cli


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["frobnicate"], "No such command 'frobnicate'"),
        (["reconcile", "--bogus"], "No such option: --bogus"),
        (["apply"], "Missing argument 'PLAN'"),
        (["pxe-conf", "10.0.2.15"], "Missing argument 'ACTION'"),
        (["reconcile", "--lock-timeout", "soon"], "Invalid value for '--lock-timeout'"),
        (["reconcile", "--lock-timeout", "-1"], "--lock-timeout"),
    ],
)
def test_usage_error_prints_usage_and_exits_1(tmp_path: Path, args: list[str], says: str) -> None:
    done = run_cli(*args, cwd=tmp_path)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stderr.startswith("Usage: testboxctl")
    assert says in done.stderr
    assert done.stdout == ""


def test_help_still_exits_0() -> None:
    done = run_cli("reconcile", "--help")
    assert done.returncode == 0
    assert "--dry-run" in done.stdout
