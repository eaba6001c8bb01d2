"""Provenance (contract §8): which revision of the desired state armed which request.

The issue's acceptance test, with a real git repository and the installed CLI: reconcile at
commit A arms box X; commit B changes only box Y; after reconciling B, X's request.json and PXE
config are byte-identical to what A wrote, and `status --json` shows A for X and B for Y. Plus
the resolver's precedence (flag, env, git, none) and `-dirty`.
"""

import json
from pathlib import Path

import pytest

from controller.desired.revision import git_revision, resolve_revision
from controller.errors import ControllerError
from schema.layout import GLOBAL_LOG, PXE_CFG_DIR
from tests.lab_builder import make_shares
from tests.review.helpers import cli, commit_all, init_repo, write_desired

X = {"name": "tb-x", "ip": "10.0.2.15", "action": "backup"}
Y_IDLE = {"name": "tb-y", "ip": "10.0.2.16"}
Y_ARMED = {"name": "tb-y", "ip": "10.0.2.16", "action": "restore", "request": "T-7"}


def _status(desired: Path) -> dict[str, dict[str, object]]:
    done = cli("status", "-f", desired, "--json")
    assert done.returncode == 0, done.stderr
    return {b["name"]: b for b in json.loads(done.stdout)["boxes"]}


def test_commit_that_changes_another_box_rewrites_nothing_for_x(tmp_path: Path) -> None:
    shares = make_shares(tmp_path / "shares")
    repo = init_repo(tmp_path / "lab-repo")
    desired = repo / "desired" / "lab.yaml"
    write_desired(desired, [X, Y_IDLE], shares.tftp, shares.backup)
    rev_a = commit_all(repo, "arm tb-x")

    first = cli("reconcile", "-f", repo / "desired")
    assert first.returncode == 0, first.stderr
    x_request = shares.backup / "10.0.2.15" / "request.json"
    x_config = shares.tftp / PXE_CFG_DIR / "0A00020F"
    request_a, config_a = x_request.read_bytes(), x_config.read_bytes()
    assert json.loads(request_a)["revision"] == rev_a
    mtime_a = x_request.stat().st_mtime_ns

    write_desired(desired, [X, Y_ARMED], shares.tftp, shares.backup)
    rev_b = commit_all(repo, "restore tb-y")
    plan = cli("reconcile", "-f", repo / "desired", "--dry-run", "--json")
    assert plan.returncode == 2, plan.stderr
    document = json.loads(plan.stdout)
    assert document["revision"] == rev_b
    assert {op["box"] for op in document["operations"]} == {"tb-y"}

    second = cli("reconcile", "-f", repo / "desired")
    assert second.returncode == 0, second.stderr
    assert x_request.read_bytes() == request_a and x_config.read_bytes() == config_a
    assert x_request.stat().st_mtime_ns == mtime_a  # not even rewritten with the same bytes
    y_request = json.loads((shares.backup / "10.0.2.16" / "request.json").read_text())
    assert y_request["revision"] == rev_b

    boxes = _status(repo / "desired")
    assert boxes["tb-x"]["armed_revision"] == rev_a
    assert boxes["tb-y"]["armed_revision"] == rev_b

    # Every global log line of a change names the revision it came from.
    log = (shares.backup / GLOBAL_LOG).read_text().splitlines()
    assert log and all("[revision " in line for line in log)
    x_lines = [line for line in log if ": 10.0.2.15: " in line]
    # directory, hostname file, request.json, disk-devices.lst, armed.json, PXE config
    assert len(x_lines) == 6 and all(f"[revision {rev_a}]" in line for line in x_lines)
    assert all("10.0.2.16" in line for line in log if f"[revision {rev_b}]" in line)

    # A third commit touching nothing a box uses: the run is in sync, nothing is written.
    (repo / "README.md").write_text("lab notes\n")
    commit_all(repo, "docs only")
    again = cli("reconcile", "-f", repo / "desired", "--dry-run")
    assert again.returncode == 0, again.stdout


def test_uncommitted_desired_file_is_dirty(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    desired = write_desired(repo / "desired" / "a.yaml", [X], tmp_path / "t", tmp_path / "b")
    rev = commit_all(repo, "one")
    assert git_revision([desired]) == rev
    (repo / "other.txt").write_text("not a desired file\n")
    assert git_revision([desired]) == rev  # only the desired files count
    write_desired(desired, [X, Y_IDLE], tmp_path / "t", tmp_path / "b")
    assert git_revision([desired]) == f"{rev}-dirty"
    new = write_desired(repo / "desired" / "b.yaml", [], tmp_path / "t", tmp_path / "b")
    commit_all(repo, "two")
    assert git_revision([desired, new]) is not None
    (repo / "desired" / "c.yaml").write_text("boxes: []\n")  # untracked: dirty too
    assert str(git_revision([desired, new, repo / "desired" / "c.yaml"])).endswith("-dirty")


def test_precedence_flag_env_git_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = tmp_path / "no-repo" / "a.yaml"
    plain.parent.mkdir()
    plain.write_text("boxes: []\n")
    monkeypatch.delenv("TESTBOX_REVISION", raising=False)
    assert resolve_revision(None, [plain]) is None
    monkeypatch.setenv("TESTBOX_REVISION", "pipeline-4711")
    assert resolve_revision(None, [plain]) == "pipeline-4711"
    assert resolve_revision("v1.2.3", [plain]) == "v1.2.3"
    with pytest.raises(ControllerError, match="--revision"):
        resolve_revision("two words", [plain])
    monkeypatch.setenv("TESTBOX_REVISION", "bad\nline")
    with pytest.raises(ControllerError, match="TESTBOX_REVISION"):
        resolve_revision(None, [plain])


def test_bad_revision_is_one_line_exit_1_nothing_changed(tmp_path: Path) -> None:
    shares = make_shares(tmp_path / "shares")
    desired = write_desired(tmp_path / "d.yaml", [X], shares.tftp, shares.backup)
    done = cli("reconcile", "-f", desired, "--revision", "a b")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "revision 'a b'" in done.stderr
    assert not (shares.backup / "10.0.2.15").exists()
    env = cli("reconcile", "-f", desired, "--dry-run", "--json", env={"TESTBOX_REVISION": "r-9"})
    assert env.returncode == 2 and json.loads(env.stdout)["revision"] == "r-9"


def test_saved_plan_carries_its_revision_to_apply(tmp_path: Path) -> None:
    shares = make_shares(tmp_path / "shares")
    desired = write_desired(tmp_path / "d.yaml", [X], shares.tftp, shares.backup)
    saved = tmp_path / "plan.json"
    planned = cli("reconcile", "-f", desired, "--dry-run", "--out", saved, "--revision", "mr-12")
    assert planned.returncode == 2, planned.stderr
    assert json.loads(saved.read_text())["revision"] == "mr-12"
    # apply PLAN re-derives the plan from the desired state (-f) before it applies it.
    applied = cli(
        "apply", saved, "-f", desired, env={"TESTBOX_REVISION": "ignored-for-a-saved-plan"}
    )
    assert applied.returncode == 0, applied.stderr
    request = json.loads((shares.backup / "10.0.2.15" / "request.json").read_text())
    assert request["revision"] == "mr-12"
    log = (shares.backup / GLOBAL_LOG).read_text().splitlines()
    assert log and all(line.endswith("[revision mr-12]") for line in log)
    # A saved plan is an input file: a revision that could add a log line is refused.
    saved.write_text(saved.read_text().replace('"mr-12"', '"a\\nb"'))
    refused = cli("apply", saved, "-f", desired)
    assert refused.returncode == 1 and "revision" in refused.stderr
