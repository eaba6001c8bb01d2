"""Shared helpers of the review tests: a real git repository of desired files, the real CLI.

The operators' workflow is a desired-state repository; these tests build one with the real
`git` (no library), commit to it, and run the installed `testboxctl` against temp shares.
"""

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.cli.runner import testboxctl_command
from tests.lab_builder import SITE

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


def cli(
    *args: object, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """The installed testboxctl; TESTBOX_* of the caller dropped, `env` added."""
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
