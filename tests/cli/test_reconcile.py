"""`testboxctl reconcile` / `apply PLAN` / `unlock` through the real entry point, on temp shares.

Each test starts from `testboxctl init --lab` (the sample lab: two armed boxes, one idle) and
checks what an operator relies on: exit codes, that a dry run or a refused run leaves both
trees byte-identical, that foreign configs are never touched, and how the lock behaves.
"""

import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schema.layout import BACKUP_MARKER, DEFAULT_CONFIG, LOCK_FILE, PXE_CFG_DIR
from tests.cli.runner import run_cli as run
from tests.lab_builder import snapshot


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    root = tmp_path / "lab"
    done = run("init", "--lab", root)
    assert done.returncode == 0, done.stderr
    return root


def says(stderr: str, text: str) -> bool:
    """`text` is in `stderr`, ignoring where the console wrapped lines."""
    return "".join(text.split()) in "".join(stderr.split())


def trees(lab: Path) -> dict[str, tuple[int, bytes | None]]:
    return snapshot(lab / "tftp", lab / "backup")


def desired(lab: Path) -> Path:
    return lab / "desired.yaml"


def test_dry_run_changes_nothing_and_exits_2(lab: Path) -> None:
    before = trees(lab)
    done = run("reconcile", "-f", desired(lab), "--dry-run")
    assert done.returncode == 2, done.stderr
    assert "write tftp:pxelinux.cfg/0A00020F" in done.stdout
    assert trees(lab) == before


def test_reconcile_applies_then_dry_run_is_in_sync(lab: Path) -> None:
    done = run("reconcile", "-f", desired(lab))
    assert done.returncode == 0, done.stderr
    assert "applied 14 change(s)" in done.stdout
    config = lab / "tftp" / PXE_CFG_DIR / "0A00020F"
    assert config.read_text().startswith("# managed-by: testboxctl\n# request: ")
    assert config.stat().st_mode & 0o777 == 0o644
    log = (lab / "backup" / "maintenance.log").read_text().splitlines()
    assert len(log) == 14 and all(": info: testboxctl: " in line for line in log)

    after = trees(lab)
    again = run("reconcile", "-f", desired(lab), "--dry-run")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "In sync" in again.stdout
    # A second real run is a no-op too: nothing written, nothing logged.
    assert run("reconcile", "-f", desired(lab)).returncode == 0
    assert trees(lab) == after


@pytest.mark.parametrize(
    "missing", [f"backup/{BACKUP_MARKER}", f"tftp/{PXE_CFG_DIR}/{DEFAULT_CONFIG}"]
)
@pytest.mark.parametrize("dry_run", [True, False])
def test_missing_marker_exits_1_and_changes_nothing(lab: Path, missing: str, dry_run: bool) -> None:
    (lab / missing).unlink()
    before = trees(lab)
    done = run("reconcile", "-f", desired(lab), *(["--dry-run"] if dry_run else []))
    assert done.returncode == 1
    assert "missing" in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.startswith("testboxctl: error: ")
    assert len(done.stderr.strip().splitlines()) == 1  # one line per problem (contract §5)
    assert trees(lab) == before


def test_saved_plan_applies_when_fresh_and_is_refused_when_stale(lab: Path, tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    made = run("reconcile", "-f", desired(lab), "--dry-run", "--out", plan)
    assert made.returncode == 2
    document = json.loads(plan.read_text())
    assert document["format_version"] == 1 and len(document["fingerprint"]) == 64

    # Someone hand-places a config between review and apply: the plan is stale.
    (lab / "tftp" / PXE_CFG_DIR / "0A000263").write_text("DEFAULT other\n")
    before = trees(lab)
    stale = run("apply", plan, "-f", desired(lab))
    assert stale.returncode == 1
    assert says(stale.stderr, "changed since this plan was made")
    assert trees(lab) == before

    (lab / "tftp" / PXE_CFG_DIR / "0A000263").unlink()
    fresh = run("apply", plan, "-f", desired(lab))
    assert fresh.returncode == 0, fresh.stderr
    assert run("reconcile", "-f", desired(lab), "--dry-run").returncode == 0


def test_foreign_configs_are_never_touched(lab: Path) -> None:
    cfg = lab / "tftp" / PXE_CFG_DIR
    # One at the name of an armed box (blocks arming it), one for a box nobody declared.
    (cfg / "0A00020F").write_text("DEFAULT hand\nLABEL hand\n  LOCALBOOT 0\n")
    (cfg / "0A0002FE").write_text("# someone's experiment\nDEFAULT x\n")
    before = {p.name: p.read_bytes() for p in cfg.iterdir()}
    done = run("reconcile", "-f", desired(lab))
    assert done.returncode == 0, done.stderr
    assert "blocked" in done.stdout and "foreign-config" in done.stdout
    for name, content in before.items():
        assert (cfg / name).read_bytes() == content
    assert not (lab / "backup" / "10.0.2.15" / "request.json").exists()


def test_empty_desired_state_is_refused_unless_allowed(lab: Path, tmp_path: Path) -> None:
    assert run("reconcile", "-f", desired(lab)).returncode == 0
    text = desired(lab).read_text()
    empty = tmp_path / "empty.yaml"
    empty.write_text(
        text.split("boxes:")[0]
        .replace("tftp_root: tftp", f"tftp_root: {lab}/tftp")
        .replace("backup_root: backup", f"backup_root: {lab}/backup")
        + "boxes: []\n"
    )
    before = trees(lab)
    refused = run("reconcile", "-f", empty)
    assert refused.returncode == 1 and says(refused.stderr, "--allow-empty")
    assert trees(lab) == before
    allowed = run("reconcile", "-f", empty, "--allow-empty")
    assert allowed.returncode == 0, allowed.stderr
    assert sorted(p.name for p in (lab / "tftp" / PXE_CFG_DIR).iterdir()) == [DEFAULT_CONFIG]


def test_json_plan_is_the_documented_document(lab: Path) -> None:
    done = run("reconcile", "-f", desired(lab), "--dry-run", "--json")
    assert done.returncode == 2
    document = json.loads(done.stdout)
    assert list(document) == [
        "format_version",
        "tftp_root",
        "backup_root",
        "observed_at",
        "fingerprint",
        "operations",
        "notices",
        "revision",
    ]
    kinds = [op["kind"] for op in document["operations"]]
    assert kinds.count("write-config") == 2
    # request.json before the config that points at it, per box.
    for ip, name in (("10.0.2.15", "0A00020F"), ("10.0.2.16", "0A000210")):
        paths = [op["path"] for op in document["operations"]]
        assert paths.index(f"{ip}/request.json") < paths.index(f"{PXE_CFG_DIR}/{name}")


def _write_lock(lab: Path, host: str, pid: int) -> Path:
    path = lab / "backup" / LOCK_FILE
    holder = {"host": host, "pid": pid, "time": datetime.now(UTC).isoformat(), "command": "ci job"}
    path.write_text(json.dumps(holder))
    return path


def test_lock_held_from_another_host_exits_1_naming_it(lab: Path) -> None:
    lock = _write_lock(lab, "ci-runner-7", 4242)
    before = trees(lab)
    done = run("reconcile", "-f", desired(lab), "--lock-timeout", "0.5")
    assert done.returncode == 1
    assert says(done.stderr, "pid 4242 on host ci-runner-7")
    assert says(done.stderr, "testboxctl unlock")
    assert trees(lab) == before
    # A dry run reads only: it does not wait for the lock.
    assert run("reconcile", "-f", desired(lab), "--dry-run").returncode == 2
    # Breaking it on purpose.
    broken = run("unlock", "-f", desired(lab))
    assert broken.returncode == 0 and "ci-runner-7" in broken.stdout
    assert not lock.exists()
    assert run("reconcile", "-f", desired(lab)).returncode == 0


def test_stale_lock_on_this_host_is_taken_over_with_a_warning(lab: Path) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead_pid = int(gone.stdout)
    lock = _write_lock(lab, socket.gethostname(), dead_pid)
    done = run("reconcile", "-f", desired(lab), "--lock-timeout", "0")
    assert done.returncode == 0, done.stderr
    assert says(done.stderr, "warning: taking over a stale lock")
    assert says(done.stderr, f"pid {dead_pid}")
    assert not lock.exists()  # released after the run


def test_live_lock_on_this_host_waits_then_exits_1(lab: Path) -> None:
    _write_lock(lab, socket.gethostname(), os.getpid())  # this test process: alive
    done = run("reconcile", "-f", desired(lab), "--lock-timeout", "0.3")
    assert done.returncode == 1 and says(done.stderr, f"pid {os.getpid()}")


def test_tampered_or_broken_plan_file_is_refused(lab: Path, tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    assert run("reconcile", "-f", desired(lab), "--dry-run", "--out", plan).returncode == 2
    document = json.loads(plan.read_text())
    document["operations"][0]["path"] = "../../outside"
    plan.write_text(json.dumps(document))
    before = trees(lab)
    refused = run("apply", plan, "-f", desired(lab))
    assert refused.returncode == 1 and says(refused.stderr, "not a testboxctl plan")
    assert len(refused.stderr.strip().splitlines()) == 1
    plan.write_text("{not json")
    assert run("apply", plan, "-f", desired(lab)).returncode == 1
    assert run("apply", tmp_path / "missing.json", "-f", desired(lab)).returncode == 1
    assert trees(lab) == before


def test_json_with_apply_keeps_stdout_a_single_document(lab: Path) -> None:
    done = run("reconcile", "-f", desired(lab), "--json")
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["operations"]) == 14
    assert "applied 14 change(s)" in done.stderr
