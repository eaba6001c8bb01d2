"""The files an operator copies (examples/desired-repo, .pre-commit-hooks.yaml), tested as far
as this machine allows (issue 11):

- the GitLab CI file and the GitHub Actions workflow validate against their official JSON
  Schemas (check-jsonschema's vendored copies: no network), and a broken copy does not;
- `pre-commit try-repo` on a temp git repository runs the hooks for real: a good desired
  directory passes, a bad one fails with `file:line: field: problem`;
- each pipeline's script steps run in order, as the CI system would run them, in a temp git
  repository against temp shares: validate, plan (exit 2 does not fail the job; the Markdown
  lands in plan.md / the job summary), apply (requests record the commit), status page.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from schema.layout import PXE_CFG_DIR
from tests.lab_builder import make_shares
from tests.review.helpers import REQUIRED, commit_all, git, init_repo

PROJECT = Path(__file__).resolve().parents[2]
EXAMPLE = PROJECT / "examples" / "desired-repo"
GITLAB = EXAMPLE / ".gitlab-ci.yml"
GITHUB = EXAMPLE / ".github" / "workflows" / "testbox.yml"
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not installed in the test venv (pip install -e '.[test]')")
    return str(path)


def _check_schema(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", schema, str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("schema", "path", "breakage"),
    [
        ("vendor.gitlab-ci", GITLAB, ("resource_group: testbox-lab", "resource_group: [1]")),
        ("vendor.github-workflows", GITHUB, ("cancel-in-progress: false", "cancel-in: false")),
    ],
)
def test_ci_files_validate_against_their_schemas(
    schema: str, path: Path, breakage: tuple[str, str], tmp_path: Path
) -> None:
    done = _check_schema(schema, path)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = tmp_path / path.name
    text = path.read_text()
    assert breakage[0] in text
    broken.write_text(text.replace(breakage[0], breakage[1]))
    assert _check_schema(schema, broken).returncode == 1  # the check has teeth


def _hook_repo(tmp_path: Path, bad: bool) -> Path:
    repo = init_repo(tmp_path / ("bad" if bad else "good"))
    shutil.copytree(EXAMPLE / "desired", repo / "desired")
    if bad:
        (repo / "desired" / "boxes-new.yaml").write_text(
            "boxes:\n  - {name: tb-new-01, ip: 10.165.98.300}\n"
            "  - {name: tb-new-02, ip: 10.165.98.225, acton: backup}\n"
        )
    git(repo, "add", "-A")
    return repo


def _try_repo(repo: Path, hook: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PATH": f"{BIN}:{os.environ['PATH']}"}
    env = {k: v for k, v in env.items() if not k.startswith("TESTBOX_")}
    return subprocess.run(
        [_tool("pre-commit"), "try-repo", str(PROJECT), hook, "--all-files"],
        check=False,
        capture_output=True,
        text=True,
        cwd=repo,
        env=env,
        timeout=900,
    )


def _needs_git_checkout() -> None:
    done = subprocess.run(
        ["git", "-C", str(PROJECT), "ls-files", "--error-unmatch", ".pre-commit-hooks.yaml"],
        check=False,
        capture_output=True,
    )
    if done.returncode != 0:
        pytest.skip("the project is not a git checkout with .pre-commit-hooks.yaml committed")


def _check_hook(tmp_path: Path, hook: str, home: Path) -> None:
    good = _try_repo(_hook_repo(tmp_path, bad=False), hook, home)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Passed" in good.stdout
    bad = _try_repo(_hook_repo(tmp_path, bad=True), hook, home)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "Failed" in bad.stdout
    assert re.search(r"desired/boxes-new\.yaml:2: boxes\[0\]\.ip: .*10\.165\.98\.300", bad.stdout)
    assert "desired/boxes-new.yaml:3: boxes[1].acton: unknown field" in bad.stdout


@pytest.mark.slow
def test_pre_commit_system_hook_rejects_a_bad_desired_file(tmp_path: Path) -> None:
    """`testboxctl-validate-system`: the installed testboxctl, no environment to build."""
    _needs_git_checkout()
    _check_hook(tmp_path, "testboxctl-validate-system", tmp_path / "pre-commit-home")


@pytest.mark.slow
def test_pre_commit_python_hook_rejects_a_bad_desired_file(tmp_path: Path) -> None:
    """`testboxctl-validate`: pre-commit builds its own venv with testboxctl from this repository
    (pip needs the package index, as for any `language: python` hook; ~40 s here)."""
    _needs_git_checkout()
    home = tmp_path / "pre-commit-home"
    probe = _try_repo(_hook_repo(tmp_path / "probe", bad=False), "testboxctl-validate", home)
    if probe.returncode != 0 and "Passed" not in probe.stdout and not REQUIRED:
        pytest.skip(f"pre-commit could not build the hook's environment: {probe.stdout[-300:]}")
    _check_hook(tmp_path, "testboxctl-validate", home)


# --- the pipelines' script steps, in order ------------------------------------------------


def _ci_repo(tmp_path: Path) -> tuple[Path, Path, Path, str]:
    """A copy of the example repository as a git repo, and temp shares for its jobs."""
    shares = make_shares(tmp_path / "shares")
    repo = init_repo(tmp_path / "lab-repo")
    shutil.copytree(EXAMPLE, repo, dirs_exist_ok=True)
    sha = commit_all(repo, "lab as in the example")
    return repo, shares.tftp, shares.backup, sha


def _run_script(
    repo: Path, lines: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    # GitLab's shell runners and GitHub's `run:` both use bash with -e and pipefail.
    return subprocess.run(
        ["bash", "-eo", "pipefail", "-c", "\n".join(lines)],
        check=False,
        capture_output=True,
        text=True,
        cwd=repo,
        env=env,
        timeout=300,
    )


def _base_env(tftp: Path, backup: Path) -> dict[str, str]:
    return {
        "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/root"),
        # The runner's mounts (the example's site paths are the production mounts).
        "TESTBOX_TFTP_ROOT": str(tftp),
        "TESTBOX_BACKUP_ROOT": str(backup),
    }


def _check_applied(backup: Path, tftp: Path, sha: str, repo: Path) -> None:
    request = json.loads((backup / "10.165.98.220" / "request.json").read_text())
    assert request["revision"] == sha
    assert (tftp / PXE_CFG_DIR / "0AA562DC").is_file()  # 10.165.98.220
    status = json.loads((repo / "status.json").read_text())
    armed = {b["name"]: b["armed_revision"] for b in status["boxes"]}
    assert armed["tb-w10-01"] == sha and armed["tb-lnx-07"] == sha
    page = (repo / "status.html").read_text()
    assert "tb-w10-01" in page and "<script" not in page


@pytest.mark.slow
def test_gitlab_pipeline_steps_in_order(tmp_path: Path) -> None:
    repo, tftp, backup, sha = _ci_repo(tmp_path)
    pipeline: dict[str, Any] = yaml.safe_load(GITLAB.read_text())
    env = _base_env(tftp, backup) | {
        "CI_COMMIT_SHA": sha,
        "CI_PIPELINE_SOURCE": "merge_request_event",
    }
    exports = [f'export {k}="{v}"' for k, v in pipeline["variables"].items()]
    for stage in pipeline["stages"]:
        for name, job in pipeline.items():
            if not isinstance(job, dict) or job.get("stage") != stage:
                continue
            lines = exports + job["script"]
            done = _run_script(repo, lines, env)
            assert done.returncode == 0, f"job {name}: {done.stdout}{done.stderr}"
            if job.get("after_script"):
                after = _run_script(repo, exports + job["after_script"], env)
                assert after.returncode == 0, f"job {name} after_script: {after.stderr}"
            if name == "plan":
                plan = (repo / "plan.md").read_text()
                assert f"revision `{sha}`" in plan and "| tb-w10-01 |" in plan
                assert not (backup / "10.165.98.220").exists()  # a dry run
    _check_applied(backup, tftp, sha, repo)
    assert "applied" in (repo / "applied.md").read_text()
    # The scheduled run: same job, nothing to change, still green.
    again = _run_script(repo, exports + pipeline["apply"]["script"], env)
    assert again.returncode == 0 and "**In sync**" in (repo / "applied.md").read_text()
    # A broken desired file fails validate with file:line.
    (repo / "desired" / "boxes-linux.yaml").write_text("boxes:\n  - {name: x, ip: 1.2.3}\n")
    bad = _run_script(repo, exports + pipeline["validate"]["script"], env)
    assert bad.returncode == 1 and "desired/boxes-linux.yaml:2: boxes[0].ip" in bad.stderr


def _github_run(step: dict[str, Any], values: dict[str, str]) -> tuple[str, dict[str, str]]:
    """A step's script and env with the `${{ }}` expressions this test can answer."""

    def expand(text: str) -> str:
        return re.sub(r"\$\{\{\s*([^}]+?)\s*\}\}", lambda m: values[m.group(1)], text)

    env = {k: expand(str(v)) for k, v in (step.get("env") or {}).items()}
    return step["run"], env


@pytest.mark.slow
def test_github_pipeline_steps_in_order(tmp_path: Path) -> None:
    repo, tftp, backup, sha = _ci_repo(tmp_path)
    workflow: dict[str, Any] = yaml.safe_load(GITHUB.read_text())
    values = {"github.sha": sha, "github.token": "", "github.event.pull_request.number": ""}
    summary = tmp_path / "step-summary.md"
    env = _base_env(tftp, backup) | {"GITHUB_STEP_SUMMARY": str(summary)}
    env |= {
        k: _github_run({"run": "", "env": {k: v}}, values)[1][k] for k, v in workflow["env"].items()
    }
    for name in ("validate", "plan", "apply"):  # `needs` order
        for step in workflow["jobs"][name]["steps"]:
            if "run" not in step:
                continue  # actions/checkout, upload-artifact: the CI system's own
            script, step_env = _github_run(step, values)
            done = _run_script(repo, [script], env | step_env)
            assert done.returncode == 0, f"{name}/{step.get('name')}: {done.stdout}{done.stderr}"
        if name == "plan":
            text = summary.read_text()
            assert f"revision `{sha}`" in text and "| tb-lnx-07 |" in text
            assert not (backup / "10.165.98.220").exists()
    _check_applied(backup, tftp, sha, repo)
