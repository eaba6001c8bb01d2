"""`testboxctl pxe-conf IP-OR-NAME ACTION`: a one-box override through plan and apply, on a lab."""

import json
from pathlib import Path

import pytest

from controller.core.override import override_line
from controller.core.render import render_box_config
from controller.desired.load import load_desired
from schema.request import Request
from tests.cli.runner import run_cli

HEX_15 = "0A00020F"


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    root = tmp_path / "lab"
    assert run_cli("init", "--lab", root).returncode == 0
    return root


def test_arming_by_name_writes_request_files_then_a_config_equal_to_render(lab: Path) -> None:
    desired = lab / "desired.yaml"
    run = run_cli("pxe-conf", "tb-w10-01", "rescue", "-f", desired)
    assert run.returncode == 0, run.stderr
    request = Request.model_validate_json(
        (lab / "backup" / "10.0.2.15" / "request.json").read_text()
    )
    assert (request.action, request.box, request.ip) == ("rescue", "tb-w10-01", "10.0.2.15")
    assert request.token is not None and request.token.startswith("pxe-conf-")
    assert (lab / "backup" / "10.0.2.15" / "disk-devices.lst").read_text() == "sda\n"
    assert (lab / "backup" / "10.0.2.15" / "tb-w10-01").is_file()

    loaded = load_desired(desired)
    box = loaded.state.effective(loaded.state.boxes[0]).model_copy(
        update={"action": "rescue", "request": request.token}
    )
    config = (lab / "tftp" / "pxelinux.cfg" / HEX_15).read_text()
    assert config == render_box_config(
        loaded.state.site, box, request.request_id, override=override_line(box)
    )
    assert f"wrote {lab / 'tftp' / 'pxelinux.cfg' / HEX_15}" in run.stdout
    # Through apply: one log line per change, as for reconcile.
    log = (lab / "backup" / "maintenance.log").read_text()
    assert "10.0.2.15: info: testboxctl: wrote tftp:pxelinux.cfg/0A00020F" in log
    assert "10.0.2.15: info: testboxctl: wrote backup:10.0.2.15/request.json" in log


def test_explicit_token_gives_the_stable_request_id(lab: Path) -> None:
    args = ("pxe-conf", "10.0.2.15", "backup-again", "-f", lab / "desired.yaml")
    first = run_cli(*args, "--request", "ticket-42")
    again = run_cli(*args, "--request", "ticket-42")
    assert first.returncode == again.returncode == 0
    rid = json.loads((lab / "backup" / "10.0.2.15" / "request.json").read_text())["request_id"]
    assert rid in first.stdout and rid in again.stdout


def test_an_ip_not_in_the_desired_file_gets_the_site_defaults(lab: Path) -> None:
    run = run_cli("pxe-conf", "10.0.2.99", "refresh-info", "-f", lab / "desired.yaml")
    assert run.returncode == 0, run.stderr
    assert (lab / "tftp" / "pxelinux.cfg" / "0A000263").is_file()
    assert (lab / "backup" / "10.0.2.99" / "box-10-0-2-99").is_file()


def test_none_removes_the_managed_config_and_nothing_else(lab: Path) -> None:
    desired = lab / "desired.yaml"
    assert run_cli("pxe-conf", "tb-w10-01", "backup", "-f", desired).returncode == 0
    run = run_cli("pxe-conf", "tb-w10-01", "none", "-f", desired)
    assert run.returncode == 0
    assert not (lab / "tftp" / "pxelinux.cfg" / HEX_15).exists()
    assert f"removed {lab / 'tftp' / 'pxelinux.cfg' / HEX_15}" in run.stdout
    assert (lab / "tftp" / "pxelinux.cfg" / "default").is_file()
    nothing = run_cli("pxe-conf", "tb-w10-01", "none", "-f", desired)
    assert nothing.returncode == 0 and "nothing to do" in nothing.stdout


def test_a_foreign_config_is_left_alone(lab: Path) -> None:
    foreign = lab / "tftp" / "pxelinux.cfg" / HEX_15
    foreign.write_text("DEFAULT hand-made\n")
    before = _snapshot(lab)
    run = run_cli("pxe-conf", "10.0.2.15", "backup", "-f", lab / "desired.yaml")
    assert run.returncode == 1
    assert "a foreign config occupies pxelinux.cfg/0A00020F" in run.stderr
    assert _snapshot(lab) == before
    # Disarming leaves it too (the planner never changes a foreign config).
    assert run_cli("pxe-conf", "10.0.2.15", "none", "-f", lab / "desired.yaml").returncode == 0
    assert foreign.read_text() == "DEFAULT hand-made\n"


def test_reconcile_keeps_the_override_until_its_request_is_done(lab: Path) -> None:
    desired = lab / "desired.yaml"
    assert run_cli("reconcile", "-f", desired).returncode == 0
    # tb-idle-03 (10.0.2.17) has action none in the desired file.
    armed = run_cli("pxe-conf", "tb-idle-03", "rescue", "-f", desired, "--request", "t1")
    assert armed.returncode == 0, armed.stderr
    dry = run_cli("reconcile", "--dry-run", "-f", desired)
    assert dry.returncode == 0, dry.stdout
    status = json.loads(run_cli("status", "-f", desired, "--json").stdout)
    idle = next(b for b in status["boxes"] if b["name"] == "tb-idle-03")
    assert (idle["action"], idle["override"], idle["in_sync"]) == ("rescue", True, True)
    # The rescue request finishes (success): the desired box (none) rules again.
    rid = json.loads((lab / "backup" / "10.0.2.17" / "request.json").read_text())["request_id"]
    results = lab / "backup" / "10.0.2.17" / "results"
    results.mkdir(exist_ok=True)
    (results / f"{rid}.json").write_text(
        json.dumps(
            {
                "schema_version": 1,
                "request_id": rid,
                "action": "rescue",
                "ip": "10.0.2.17",
                "hostname": "tb-idle-03",
                "service_version": "0.1.0",
                "outcome": "success",
                "attempt": 1,
                "started": "2026-01-01T00:00:00Z",
                "finished": "2026-01-01T00:01:00Z",
            }
        )
    )
    after = run_cli("reconcile", "--dry-run", "-f", desired, "--json")
    assert after.returncode == 2
    kinds = [(op["kind"], op["path"]) for op in json.loads(after.stdout)["operations"]]
    assert kinds == [("remove-config", "pxelinux.cfg/0A000211")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("tb-nope", "backup"), "no box named 'tb-nope'"),
        (("999.1.1.1", "backup"), "no box named '999.1.1.1'"),
        (("10.0.2.015", "backup"), "no box named '10.0.2.015'"),
        (("10.0.2.15", "format"), "unknown action 'format'"),
        (("10.0.2.15", "backup", "--request", "two words"), "invalid --request"),
        (("10.0.2.15", "restore", "--image", "../x"), "invalid --request or --image"),
    ],
)
def test_bad_arguments_change_nothing(lab: Path, args: tuple[str, ...], message: str) -> None:
    before = _snapshot(lab)
    run = run_cli("pxe-conf", *args, "-f", lab / "desired.yaml")
    assert run.returncode == 1
    assert message in run.stderr and "Traceback" not in run.stderr
    assert _snapshot(lab) == before


@pytest.mark.parametrize("missing", ["backup/testbox-backup", "tftp/pxelinux.cfg/default"])
def test_an_unmounted_share_stops_before_any_change(lab: Path, missing: str) -> None:
    (lab / missing).unlink()
    before = _snapshot(lab)
    run = run_cli("pxe-conf", "10.0.2.15", "backup", "-f", lab / "desired.yaml")
    assert run.returncode == 1 and "not mounted" in run.stderr
    assert _snapshot(lab) == before


def test_share_flags_override_the_desired_file(lab: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    assert run_cli("init", "--lab", other).returncode == 0
    run = run_cli(
        "pxe-conf",
        "10.0.2.15",
        "backup",
        "-f",
        lab / "desired.yaml",
        "--tftp-root",
        other / "tftp",
        "--backup-root",
        other / "backup",
    )
    assert run.returncode == 0, run.stderr
    assert (other / "tftp" / "pxelinux.cfg" / HEX_15).is_file()
    assert not (lab / "tftp" / "pxelinux.cfg" / HEX_15).exists()


def test_pxe_conf_waits_for_the_share_lock_and_gives_up_naming_the_holder(lab: Path) -> None:
    from controller.io.lock import acquire, release

    holder = acquire(lab / "backup", "testboxctl reconcile (test)", timeout=0)
    try:
        before = _snapshot(lab / "tftp")
        run = run_cli(
            "pxe-conf", "10.0.2.15", "backup", "-f", lab / "desired.yaml", "--lock-timeout", "0"
        )
        assert run.returncode == 1, run.stderr
        assert "testboxctl reconcile (test)" in run.stderr
        assert _snapshot(lab / "tftp") == before
    finally:
        release(lab / "backup", holder)


def test_a_box_with_a_mac_is_armed_under_its_hex_ip_name_only(lab: Path) -> None:
    desired = lab / "desired.yaml"
    text = desired.read_text().replace(
        "{name: tb-idle-03, ip: 10.0.2.17}",
        "{name: tb-idle-03, ip: 10.0.2.17, mac: 52:54:00:AB:CD:EF}",
    )
    desired.write_text(text)
    assert run_cli("pxe-conf", "tb-idle-03", "refresh-info", "-f", desired).returncode == 0
    hexname = lab / "tftp" / "pxelinux.cfg" / "0A000211"
    macname = lab / "tftp" / "pxelinux.cfg" / "01-52-54-00-ab-cd-ef"
    # Like reconcile: the hex-IP name only, so reconcile has nothing of it to remove.
    assert hexname.is_file() and not macname.exists()
    assert (
        run_cli("reconcile", "--dry-run", "-f", desired, "--json").stdout.count(
            "01-52-54-00-ab-cd-ef"
        )
        == 0
    )
    # A managed config left under the MAC name (an older pxe-conf) goes on `none`.
    macname.write_text(hexname.read_text())
    assert run_cli("pxe-conf", "tb-idle-03", "none", "-f", desired).returncode == 0
    assert not hexname.exists() and not macname.exists()


def test_a_restore_override_is_not_kept_by_reconcile(lab: Path) -> None:
    """A forged override must not be able to restore a box: restore is armed once, unrecorded."""
    desired = lab / "desired.yaml"
    assert run_cli("reconcile", "-f", desired).returncode == 0
    armed = run_cli("pxe-conf", "tb-idle-03", "restore", "-f", desired)
    assert armed.returncode == 0, armed.stderr
    config = (lab / "tftp" / "pxelinux.cfg" / "0A000211").read_text()
    assert "testbox-action-restore" in config and "# override:" not in config
    dry = run_cli("reconcile", "--dry-run", "-f", desired, "--json")
    kinds = [(op["kind"], op["path"]) for op in json.loads(dry.stdout)["operations"]]
    assert kinds == [("remove-config", "pxelinux.cfg/0A000211")]
