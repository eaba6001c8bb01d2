"""Which revision of the desired state a run works from (contract §8: provenance).

The desired state lives in the operators' git repository; recording the commit with each armed
request answers "which change armed this box?" long after the merge. Precedence: `--revision`,
else env TESTBOX_REVISION (CI systems know their commit even in a shallow or detached checkout),
else `git rev-parse HEAD` of the repository holding the desired files, with `-dirty` appended
when any of those files has uncommitted changes (or is untracked), else none.

`git` is run as a program rather than through a library (GitPython, pygit2): two read-only
commands are all that is needed, and git is always there where a repository is.
A missing git, a directory that is no repository, or a repository git refuses to read (a CI
checkout owned by another user: "dubious ownership") all mean "no revision", never an error: a
lab run by hand from a plain directory must keep working.
"""

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from controller.errors import ControllerError
from schema.request import Revision

REVISION_ENV = "TESTBOX_REVISION"
_GIT_TIMEOUT = 10.0
_REVISION = TypeAdapter(Revision)


def check_revision(value: str, source: str) -> str:
    """A revision given by the operator, validated (it ends up in request.json and log lines)."""
    try:
        return _REVISION.validate_python(value)
    except ValidationError:
        raise ControllerError(
            f"{source}: revision {value!r} is not one word of letters, digits and ._+/:@- "
            "(at most 100 characters, starting with a letter or digit)"
        ) from None


def _git(cwd: Path, *args: str) -> str | None:
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        done = subprocess.run(
            ["git", "-C", str(cwd), *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT,
            env=env,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def git_revision(sources: Sequence[Path]) -> str | None:
    """`<sha>` of HEAD of the repository holding `sources`, `<sha>-dirty` if any is modified."""
    if not sources:
        return None
    first = sources[0].resolve()
    where = first if first.is_dir() else first.parent
    head = _git(where, "rev-parse", "--verify", "--quiet", "HEAD")
    if head is None or not head.strip():
        return None
    # --porcelain lists modified, staged and untracked files; only the desired files count
    # (a dirty README in the same repository does not make the desired state dirty).
    paths = [str(p.resolve()) for p in sources]
    changes = _git(where, "status", "--porcelain", "--untracked-files=all", "--", *paths)
    if changes is None:
        return None
    sha = head.strip()
    return f"{sha}-dirty" if changes.strip() else sha


def resolve_revision(flag: str | None, sources: Sequence[Path]) -> str | None:
    """contract §8's precedence: flag, environment, git, none."""
    if flag:
        return check_revision(flag, "--revision")
    env = os.environ.get(REVISION_ENV)
    if env:
        return check_revision(env, REVISION_ENV)
    return git_revision(sources)
