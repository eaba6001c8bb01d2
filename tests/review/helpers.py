"""Shared helpers of the review tests: a real git repository of desired files, the real CLI.

The operators' workflow is a desired-state repository; these tests build one with the real
`git` (no library), commit to it, and run the installed `testboxctl` against temp shares.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.cli.runner import CliResult, run_cli, testboxctl_command
from tests.lab_builder import SITE

# CI sets this: a test whose Debian tool is missing fails instead of skipping (.ci/run).
REQUIRED = os.environ.get("TESTBOX_E2E_REQUIRED") == "1"
ARTIFACTS = Path(__file__).parent / "artifacts"


def need_program(name: str, package: str) -> str:
    """Path of `name`; skip (or, in CI, fail) when the Debian package is not installed."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} missing (Debian package {package}, .ci/install-system-packages)"
        if REQUIRED:
            pytest.fail(message + " (TESTBOX_E2E_REQUIRED=1: a skip would hide this)")
        pytest.skip(message)
    return path


GIT_ID = [
    "-c",
    "user.name=Test Operator",
    "-c",
    "user.email=operator@example.invalid",
    "-c",
    "commit.gpgsign=false",
    "-c",
    "init.defaultBranch=main",
]


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *GIT_ID, "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout.strip()


def init_repo(repo: Path) -> Path:
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q")
    return repo


def commit_all(repo: Path, message: str) -> str:
    """Commit everything in the work tree; returns the new commit's full sha."""
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def write_desired(path: Path, boxes: list[dict[str, Any]], tftp: Path, backup: Path) -> Path:
    """A desired YAML (as JSON, which is YAML) for `boxes`, pointing at the given shares."""
    site = json.loads(json.dumps(SITE))
    site["tftp_root"] = str(tftp)
    site["backup_root"] = str(backup)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"site": site, "boxes": boxes}, indent=1) + "\n")
    return path


def cli(*args: object, cwd: Path | None = None, env: dict[str, str] | None = None) -> CliResult:
    """testboxctl in process (tests/cli/runner.py); TESTBOX_* of the caller dropped."""
    return run_cli(*args, cwd=cwd, env=env)


def cli_subprocess(
    *args: object, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """The installed testboxctl script; TESTBOX_* of the caller dropped, `env` added."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("TESTBOX_")}
    return subprocess.run(
        [*testboxctl_command(), *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**base, **(env or {})},
        timeout=timeout,
    )
