"""Run `testboxctl` as an operator does: the installed console script, in a subprocess.

The script next to the running interpreter is preferred (the venv under test), then PATH.
`TESTBOX_*` variables of the caller are dropped so share paths come only from the desired file
or the flags a test passes.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path


def testboxctl_command() -> list[str]:
    sibling = Path(sys.executable).parent / "testboxctl"
    if sibling.exists():
        return [str(sibling)]
    exe = shutil.which("testboxctl")
    return [exe] if exe else [sys.executable, "-c", "from controller.cli import main; main()"]


def run_cli(
    *args: object, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESTBOX_")}
    return subprocess.run(
        [*testboxctl_command(), *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )
