"""testboxctl on hostile shares (SPEC §9, issue 8): every place a box or a TFTP user can write.

For each class of hostile entry (a link, a FIFO, a device, a directory where a file belongs, a
file where a directory belongs, oversized, malformed or lying JSON of every record kind) in
every place of both shares, after the lab was armed once:
- `reconcile --dry-run --out`, `reconcile`, `status --json` neither hang, nor print a
  traceback, nor exit with anything but their contract codes;
- the one-line notice names the box and the path;
- content behind a link never reaches the plan, the saved plan or the status;
- nothing outside the temp shares changed (the outside tree is hashed before and after), and
  the hostile entry itself is still there (never deleted or written through);
- the rest of the lab converges: a second dry run plans nothing for the healthy boxes (nor
  for the victim, which is disarmed and then left alone).
"""

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from schema.layout import PXE_CFG_DIR, hex_ip
from tests.hostile.controller_lab import HEALTHY, OLD, SECRET, VICTIM, ControllerLab

Build = Callable[[ControllerLab], None]


def _result(lab: ControllerLab, **changes: object) -> bytes:
    doc: dict[str, object] = {
        "schema_version": 1,
        "request_id": lab.rid(VICTIM),
        "action": "backup",
        "ip": VICTIM,
        "hostname": "tb-9",
        "outcome": "failure",
        "attempt": 1,
        "started": "2026-11-25T12:00:00+00:00",
        "finished": "2026-11-25T12:01:00+00:00",
        "error": "disk read error",
        "service_version": "test",
    }
    doc.update(changes)
    return json.dumps(doc).encode()


def _result_path(lab: ControllerLab) -> Path:
    return lab.box() / "results" / f"{lab.rid(VICTIM)}.json"


def _device(lab: ControllerLab, path: Path) -> None:
    try:
        os.mknod(lab.replace(path), 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # like /dev/zero
    except PermissionError:
        pytest.skip("creating a device node needs root")


# case -> (build, the path the notice must name)
CASES: dict[str, tuple[Build, str]] = {
    "box-dir-link": (lambda lab: lab.link(lab.box(), lab.outside), VICTIM),
    "box-dir-fifo": (lambda lab: lab.fifo(lab.box()), VICTIM),
    "box-dir-file": (lambda lab: lab.write(lab.box(), b"x"), VICTIM),
    "request-link": (
        lambda lab: lab.link(lab.box() / "request.json", lab.outside / "request.json"),
        f"{VICTIM}/request.json",
    ),
    "request-fifo": (lambda lab: lab.fifo(lab.box() / "request.json"), f"{VICTIM}/request.json"),
    "request-dir": (
        lambda lab: lab.directory(lab.box() / "request.json"),
        f"{VICTIM}/request.json",
    ),
    "request-huge": (
        lambda lab: lab.write(lab.box() / "request.json", b" " * (2 << 20)),
        f"{VICTIM}/request.json",
    ),
    "request-not-utf8": (
        lambda lab: lab.write(lab.box() / "request.json", b"\xff\xfe{"),
        f"{VICTIM}/request.json",
    ),
    "disk-list-link": (
        lambda lab: lab.link(lab.box() / "disk-devices.lst", lab.outside / "disk-devices.lst"),
        f"{VICTIM}/disk-devices.lst",
    ),
    "disk-list-fifo": (
        lambda lab: lab.fifo(lab.box() / "disk-devices.lst"),
        f"{VICTIM}/disk-devices.lst",
    ),
    "results-dir-link": (
        lambda lab: lab.link(lab.box() / "results", lab.outside / "results"),
        f"{VICTIM}/results",
    ),
    "results-dir-file": (
        lambda lab: lab.write(lab.box() / "results", b""),
        f"{VICTIM}/results",
    ),
    "result-link": (
        lambda lab: lab.link(_result_path(lab), lab.outside / f"{lab.rid(VICTIM)}.json"),
        f"{VICTIM}/results/",
    ),
    "result-link-dev-zero": (
        lambda lab: lab.link(_result_path(lab), Path("/dev/zero")),
        f"{VICTIM}/results/",
    ),
    "result-device": (lambda lab: _device(lab, _result_path(lab)), f"{VICTIM}/results/"),
    "result-fifo": (lambda lab: lab.fifo(_result_path(lab)), f"{VICTIM}/results/"),
    "result-dir": (lambda lab: lab.directory(_result_path(lab)), f"{VICTIM}/results/"),
    "result-nested": (
        lambda lab: lab.write(_result_path(lab), b"[" * 100_000),
        f"{VICTIM}/results/",
    ),
    "result-huge": (
        lambda lab: lab.write(_result_path(lab), b"[" + b"1," * (1 << 20) + b"1]"),
        f"{VICTIM}/results/",
    ),
    "result-error-object": (
        lambda lab: lab.write(_result_path(lab), _result(lab, error={"why": "x"})),
        f"{VICTIM}/results/",
    ),
    "result-naive-time": (
        lambda lab: lab.write(_result_path(lab), _result(lab, finished="2026-11-25T12:01:00")),
        f"{VICTIM}/results/",
    ),
    "result-bool-attempt": (
        lambda lab: lab.write(_result_path(lab), _result(lab, attempt=True)),
        f"{VICTIM}/results/",
    ),
    "result-not-object": (
        lambda lab: lab.write(_result_path(lab), b"[1, 2]"),
        f"{VICTIM}/results/",
    ),
    "result-other-request": (
        lambda lab: lab.write(_result_path(lab), _result(lab, request_id="000000000000")),
        f"{VICTIM}/results/",
    ),
    "images-link": (
        lambda lab: lab.link(lab.box() / "images", lab.outside / "images"),
        f"{VICTIM}/images",
    ),
    "images-file": (lambda lab: lab.write(lab.box() / "images", b""), f"{VICTIM}/images"),
    "legacy-link": (
        lambda lab: lab.link(lab.box() / "sda.gz", lab.outside / "request.json"),
        f"{VICTIM}/sda.gz",
    ),
    "hostname-link": (
        lambda lab: lab.link(lab.box() / "tb-9", lab.outside / "request.json"),
        f"{VICTIM}/tb-9",
    ),
    "hostname-dir": (lambda lab: lab.directory(lab.box() / "tb-9"), f"{VICTIM}/tb-9"),
    "arm-record-garbage": (
        lambda lab: lab.write(lab.box() / "armed.json", b'{"arms": "many"}'),
        f"{VICTIM}/armed.json",
    ),
    "arm-record-fifo": (lambda lab: lab.fifo(lab.box() / "armed.json"), f"{VICTIM}/armed.json"),
    "config-link": (
        lambda lab: lab.link(lab.config(), lab.outside / "request.json"),
        f"{PXE_CFG_DIR}/{hex_ip(VICTIM)}",
    ),
    "config-fifo": (lambda lab: lab.fifo(lab.config()), f"{PXE_CFG_DIR}/{hex_ip(VICTIM)}"),
    "config-huge": (
        lambda lab: lab.write(lab.config(), b"# managed-by: testboxctl\n" + b"#" * (2 << 20)),
        f"{PXE_CFG_DIR}/{hex_ip(VICTIM)}",
    ),
}


def _no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text
        assert SECRET not in text
        for line in text.splitlines():
            if "error" in line.lower() and line.startswith("testboxctl"):
                assert line.startswith(("testboxctl: error: ", "testboxctl: warning: "))


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_entry_is_a_notice_of_its_box_and_the_lab_converges(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    lab = ControllerLab(tmp_path)
    code, _, err = lab.reconcile(capsys)
    assert code == 0, err  # the whole lab armed: box directories, request files, configs
    build, where = CASES[case]
    build(lab)
    hostile = {p: p.lstat().st_mode for p in _hostile_paths(lab)}

    plan_file = tmp_path / "plan.json"
    code, out, err = lab.reconcile(capsys, "--dry-run", "--out", str(plan_file))
    assert code in (0, 2), err
    _no_traceback(out, err, plan_file.read_text())
    notices = [line for line in out.splitlines() if where in line and "!" in line]
    assert notices, out  # one line naming the box's path
    assert all(len(line) < 2000 for line in notices)

    code, out, err = lab.reconcile(capsys)
    assert code == 0, err
    _no_traceback(out, err)
    lab.outside_unchanged()
    assert lab.pending_ips(capsys) == set()  # healthy boxes in sync; the victim left alone
    for ip in HEALTHY:
        assert lab.config(ip).is_file() and (lab.box(ip) / "request.json").is_file()
    # The hostile entry is still what it was: never removed, replaced or written through.
    assert {p: p.lstat().st_mode for p in _hostile_paths(lab)} == hostile

    code, out, err = lab.cli(capsys, "status", "-f", str(lab.desired), "--json")
    assert code == 0, err
    _no_traceback(out, err)
    victim = next(b for b in json.loads(out)["boxes"] if b["ip"] == VICTIM)
    if not where.startswith(PXE_CFG_DIR):
        assert victim["problems"] and all(where in p for p in victim["problems"])
        assert not lab.config().exists()  # a damaged box is disarmed: it boots its own disk


def _hostile_paths(lab: ControllerLab) -> list[Path]:
    """Every entry of the victim that is a link, FIFO, device or misplaced dir/file."""
    found = []
    for root in (lab.shares.backup, lab.shares.tftp / PXE_CFG_DIR):
        for directory, dirs, files in os.walk(root, followlinks=False):
            for name in dirs + files:
                path = Path(directory, name)
                mode = path.lstat().st_mode
                if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)) or VICTIM in str(path):
                    found.append(path)
    return found


def test_global_log_link_is_a_warning_and_never_written_through(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lab = ControllerLab(tmp_path)
    lab.link(lab.shares.backup / "maintenance.log", lab.outside / "maintenance.log")
    code, out, err = lab.reconcile(capsys)
    assert code == 0, err
    _no_traceback(out, err)
    assert "maintenance.log: is a symbolic link (never followed)" in out  # the plan's notice
    assert "warning:" in err and "changes not logged there" in err
    lab.outside_unchanged()
    assert lab.pending_ips(capsys) == set()


def test_dead_temp_files_of_ours_are_swept_under_the_lock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lab = ControllerLab(tmp_path)
    assert lab.reconcile(capsys)[0] == 0
    cfg = lab.shares.tftp / PXE_CFG_DIR
    dead = [cfg / ".0A090909.0123456789ab.tmp", lab.box() / ".request.json.0123456789ab.tmp"]
    young = cfg / ".0A09090A.0123456789ab.tmp"
    theirs = lab.box() / ".inventory.json.0123456789ab.tmp"  # the service's, not ours
    for path in [*dead, young, theirs]:
        path.write_text("half written")
    for path in [*dead, theirs]:
        os.utime(path, (OLD, OLD))
    link = lab.box(HEALTHY[0]) / ".disk-devices.lst.0123456789ab.tmp"
    link.symlink_to(lab.outside / "disk-devices.lst")
    os.utime(link, (OLD, OLD), follow_symlinks=False)
    code, _, err = lab.reconcile(capsys)
    assert code == 0, err
    assert not any(p.exists() for p in dead)
    assert young.exists() and theirs.exists() and link.is_symlink()
    lab.outside_unchanged()


def test_unreadable_markers_stop_before_anything_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lab = ControllerLab(tmp_path)
    marker = lab.shares.backup / "testbox-backup"
    lab.link(marker, lab.outside / "request.json")
    code, _, err = lab.reconcile(capsys)
    assert code == 1
    assert err.strip().splitlines() == [
        f"testboxctl: error: {marker}: backup share marker testbox-backup is a symbolic link "
        "(never followed); nothing changed"
    ]
    assert not lab.box(HEALTHY[0]).exists()
    lab.outside_unchanged()


def test_real_entry_point_on_a_dev_zero_result_link(tmp_path: Path) -> None:
    """The installed console script, as an operator runs it: one notice, no traceback."""
    from tests.cli.runner import run_cli

    lab = ControllerLab(tmp_path)
    assert run_cli("reconcile", "-f", lab.desired, timeout=120).returncode == 0
    lab.link(_result_path(lab), Path("/dev/zero"))
    done = run_cli("reconcile", "-f", lab.desired, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert f"{VICTIM}/results/{lab.rid(VICTIM)}.json: is a symbolic link" in done.stdout
    done = run_cli("status", "-f", lab.desired, timeout=120)
    assert done.returncode == 0 and f"problem of tb-9 ({VICTIM})" in done.stdout
