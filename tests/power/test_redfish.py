"""Redfish power control against a real Redfish server: `sushy-emulator --fake` on loopback.

contract §7 end to end through `testboxctl reconcile`: arming a backup sets a one-time PXE boot
override and resets (or powers on) the system; a second run cycles nothing; without an attempt
result `retry_after` after the cycle the box is cycled again, up to `max_cycles`, then only a
notice remains; an unreachable BMC is one line naming its box, the other boxes are armed and
cycled anyway, and the run exits 1.
"""

import time
from pathlib import Path

import pytest

from tests.power.conftest import Redfish, free_port
from tests.power.lab import make_lab

pytestmark = pytest.mark.slow


def box(name: str, ip: str, address: str, extra: str = "") -> str:
    return (
        f"{{name: {name}, ip: {ip}, action: backup, power: {{method: redfish, "
        f'address: "{address}", credentials: lab-bmc{extra}}}}}'
    )


def test_arm_sets_pxe_once_and_powers_on_then_nothing_more(
    tmp_path: Path, redfish: Redfish
) -> None:
    lab = make_lab(tmp_path)
    redfish.force("Off")
    before = redfish.resets()
    lab.want(box("tb1", "10.0.2.15", redfish.url))

    dry = lab.reconcile("--dry-run", env={})  # no credentials needed, nothing contacted
    assert dry.returncode == 2
    assert "power-cycle tb1 via redfish" in dry.stdout
    assert "needs credentials: lab-bmc" in dry.stderr
    assert redfish.resets() == before

    done = lab.reconcile()
    assert done.returncode == 0, done.stderr
    assert lab.config("10.0.2.15").exists()
    boot = redfish.system()["Boot"]
    assert boot["BootSourceOverrideTarget"] == "Pxe"
    redfish.wait_power("On")  # it was off: powered on, into PXE
    record = lab.power("10.0.2.15")
    assert record["outcome"] == "cycled" and record["action"] == "on" and record["cycle"] == 1
    assert record["power_state"] == "off"
    assert "power-cycled tb1 via redfish (on, was off; cycle 1 of 3" in lab.log()
    assert lab.status("10.0.2.15")["power"]["outcome"] == "cycled"

    again = lab.reconcile("--dry-run")
    assert again.returncode == 0, again.stdout  # in sync: nothing to cycle
    assert lab.reconcile().returncode == 0
    assert redfish.resets() == before + 1


def test_no_result_after_retry_after_cycles_again_up_to_max_cycles(
    tmp_path: Path, redfish: Redfish
) -> None:
    redfish.force("On")
    base = redfish.resets()
    lab = make_lab(tmp_path)
    lab.want(box("tb1", "10.0.2.15", redfish.url, ", retry_after: 2s, max_cycles: 2"))
    assert lab.reconcile().returncode == 0
    first = lab.power("10.0.2.15")
    assert first["action"] == "reset" and first["power_state"] == "on"  # ForceRestart
    assert redfish.resets() == base + 1

    assert lab.reconcile("--dry-run").returncode == 0  # within retry_after: nothing
    time.sleep(2.2)
    dry = lab.reconcile("--dry-run")
    assert "no attempt result 2s after the power cycle at" in dry.stdout
    assert "cycle 2 of 2" in dry.stdout
    assert lab.reconcile().returncode == 0
    assert lab.power("10.0.2.15")["cycle"] == 2
    assert redfish.resets() == base + 2

    time.sleep(2.2)
    final = lab.reconcile()
    assert final.returncode == 0, final.stderr
    assert "power-cycle" not in final.stdout.split("Notices")[0]
    assert "2 of 2 power cycles done" in final.stdout
    assert "acts at its next reboot" in final.stdout
    assert redfish.resets() == base + 2
    assert lab.config("10.0.2.15").exists()  # still armed: the box acts when it reboots


def test_unreachable_bmc_is_one_line_and_the_others_are_cycled(
    tmp_path: Path, redfish: Redfish
) -> None:
    lab = make_lab(tmp_path)
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    lab.want(
        box("tb1", "10.0.2.15", redfish.url),
        box("tb-dead", "10.0.2.16", dead),
        box("tb3", "10.0.2.17", redfish.url),
    )
    done = lab.reconcile()
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("testboxctl: error:")]
    assert len(errors) == 1, done.stderr
    assert "tb-dead (10.0.2.16)" in errors[0] and dead in errors[0] and "unreachable" in errors[0]
    for ip in ("10.0.2.15", "10.0.2.16", "10.0.2.17"):
        assert lab.config(ip).exists()  # every box armed
    assert lab.power("10.0.2.15")["outcome"] == "cycled"
    assert lab.power("10.0.2.17")["outcome"] == "cycled"
    assert lab.power("10.0.2.16")["outcome"] == "unreachable"  # recorded
    assert "error: testboxctl: tb-dead (10.0.2.16)" in lab.log()
    # The next run retries only the dead one, at once.
    dry = lab.reconcile("--dry-run")
    assert dry.stdout.count("power-cycle ") == 1 and "tb-dead via redfish" in dry.stdout


def test_missing_credentials_fail_before_anything_changes(tmp_path: Path, redfish: Redfish) -> None:
    lab = make_lab(tmp_path)
    lab.want(box("tb1", "10.0.2.15", redfish.url))
    done = lab.reconcile(env={})
    assert done.returncode == 1
    assert "credentials 'lab-bmc' not found" in done.stderr
    assert not (lab.backup / "10.0.2.15").exists() and not lab.config("10.0.2.15").exists()
    # A credentials file works as well as the environment.
    creds = tmp_path / "creds.yaml"
    creds.write_text("lab-bmc: {username: tbadmin, password: s3cret-pw}\n")
    assert lab.reconcile("--credentials", str(creds), env={}).returncode == 0
    assert lab.power("10.0.2.15")["outcome"] == "cycled"


def test_tls_is_verified_unless_the_box_says_verify_tls_false(
    tmp_path: Path, redfish_tls: Redfish
) -> None:
    lab = make_lab(tmp_path)
    lab.want(box("tb1", "10.0.2.15", redfish_tls.url))
    refused = lab.reconcile()
    assert refused.returncode == 1
    assert "TLS certificate not trusted" in refused.stderr and "verify_tls: false" in refused.stderr
    assert lab.power("10.0.2.15")["outcome"] == "failed"
    assert redfish_tls.resets() == 0
    lab.want(box("tb1", "10.0.2.15", redfish_tls.url, ", verify_tls: false"))
    done = lab.reconcile()
    assert done.returncode == 0, done.stderr
    assert lab.power("10.0.2.15")["outcome"] == "cycled"
    assert redfish_tls.resets() == 1
