"""IPMI power control with the real `ipmitool -I lanplus` against pyghmi's fakebmc on loopback.

The BMC records what it was asked: `chassis bootdev pxe` arrives as boot device "network", then
`power reset` when the chassis is on, `power on` when it is off. The password reaches ipmitool
through IPMI_PASSWORD (`-E`), never its command line.
"""

from pathlib import Path

import pytest

from controller.io.power.credentials import Credentials
from controller.io.power.ipmi import IpmiDriver
from schema.power import PowerConfig, PowerTarget
from tests.power.conftest import Ipmi
from tests.power.lab import make_lab

pytestmark = pytest.mark.slow


def box(bmc: Ipmi, name: str = "tb1", ip: str = "10.0.2.15") -> str:
    return (
        f"{{name: {name}, ip: {ip}, action: backup, power: {{method: ipmi, address: 127.0.0.1, "
        f"port: {bmc.port}, credentials: lab-bmc}}}}"
    )


def test_reconcile_sets_bootdev_pxe_and_resets(tmp_path: Path, ipmi_bmc: Ipmi) -> None:
    lab = make_lab(tmp_path)
    lab.want(box(ipmi_bmc))
    done = lab.reconcile()
    assert done.returncode == 0, done.stderr
    assert ipmi_bmc.calls() == ["bootdev network", "power reset"]
    record = lab.power("10.0.2.15")
    assert record["method"] == "ipmi" and record["action"] == "reset"
    assert record["power_state"] == "on" and record["outcome"] == "cycled"
    # Once per request.
    assert lab.reconcile().returncode == 0
    assert ipmi_bmc.calls() == ["bootdev network", "power reset"]


def test_a_chassis_that_is_off_is_powered_on(tmp_path: Path, ipmi_bmc_off: Ipmi) -> None:
    lab = make_lab(tmp_path)
    lab.want(box(ipmi_bmc_off))
    assert lab.reconcile().returncode == 0
    assert ipmi_bmc_off.calls() == ["bootdev network", "power on"]
    assert lab.power("10.0.2.15")["action"] == "on"


def test_the_password_is_never_on_the_command_line(ipmi_bmc: Ipmi) -> None:
    driver = IpmiDriver(Credentials(ipmi_bmc.user, ipmi_bmc.password))
    target = PowerTarget(
        name="tb1",
        ip="10.0.2.15",
        power=PowerConfig(
            method="ipmi", address="127.0.0.1", port=ipmi_bmc.port, credentials="lab-bmc"
        ),
        cycle=1,
        attempts_seen=0,
    )
    argv = driver._argv(target, "chassis", "power", "status")
    assert ipmi_bmc.password not in " ".join(argv) and "-E" in argv
    assert driver.state(target) == "on"


def test_wrong_password_is_one_line_naming_the_box(tmp_path: Path, ipmi_bmc: Ipmi) -> None:
    lab = make_lab(tmp_path)
    lab.want(box(ipmi_bmc))
    env = {
        "TESTBOX_CREDENTIALS_LAB_BMC_USERNAME": ipmi_bmc.user,
        "TESTBOX_CREDENTIALS_LAB_BMC_PASSWORD": "wrong",
    }
    done = lab.reconcile(env=env)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("testboxctl: error:")]
    assert len(errors) == 1 and "tb1 (10.0.2.15): BMC 127.0.0.1" in errors[0], done.stderr
    assert ipmi_bmc.calls() == []
    assert lab.power("10.0.2.15")["outcome"] in ("unreachable", "failed")
