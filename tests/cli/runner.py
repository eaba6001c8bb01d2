"""Run `testboxctl` the way the tests need: in process (fast) or as the installed script (smoke).

`run_cli` calls `controller.cli.run`, the very function the console script calls, inside typer's
`CliRunner` isolation (stdin, stdout, stderr and the environment swapped for the call), so a test
sees the same exit codes, one-line errors and usage messages as an operator, without paying
~1.5 s of interpreter start per command. `run_cli_subprocess` runs the installed console script
for the few smoke tests that must prove the entry point itself works (tests/cli/test_smoke.py).

`TESTBOX_*` variables of the caller are dropped in both, so share paths come only from the
desired file or the flags a test passes (and `env` a test gives).
"""

import contextlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from controller.cli import run


@dataclass
class CliResult:
    """What a command did: the fields tests read from `subprocess.CompletedProcess` too."""

    returncode: int
    stdout: str
    stderr: str


def _env(env: dict[str, str] | None) -> dict[str, str | None]:
    dropped: dict[str, str | None] = {k: None for k in os.environ if k.startswith("TESTBOX_")}
    dropped.update(env or {})
    return dropped


def run_cli(
    *args: object,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> CliResult:
    """One command line, in this process. `timeout` is accepted for the subprocess signature."""
    del timeout  # in process there is nothing to kill; pytest-timeout guards the test
    runner = CliRunner()
    with contextlib.ExitStack() as stack:
        if cwd is not None:
            stack.enter_context(contextlib.chdir(cwd))
        streams = stack.enter_context(runner.isolation(env=_env(env)))
        code = run([str(a) for a in args])
        sys.stdout.flush()
        sys.stderr.flush()
        out, err = streams[0].getvalue(), streams[1].getvalue()
    return CliResult(code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


def testboxctl_command() -> list[str]:
    """The installed console script of the venv under test (never depends on PATH)."""
    sibling = Path(sys.executable).parent / "testboxctl"
    if sibling.exists():
        return [str(sibling)]
    exe = shutil.which("testboxctl")
    return [exe] if exe else [sys.executable, "-c", "from controller.cli import main; main()"]


def run_cli_subprocess(
    *args: object,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TESTBOX_")}
    full_env.update(env or {})
    return subprocess.run(
        [*testboxctl_command(), *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=timeout,
    )
