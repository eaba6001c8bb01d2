"""Validation of schedules, power configs and credentials: one line per problem, with file:line."""

from pathlib import Path

import pytest

from controller.desired.load import load_desired
from controller.errors import ControllerError, DesiredStateError
from controller.io.power.credentials import CredentialSource, env_prefix, require_credentials
from tests.sample_site import SITE_LINES, site_yaml

# The sample site with a default schedule; its `defaults:` line follows the plain block, then
# `boxes:`, then one line per box.
DEFAULTS_LINE = SITE_LINES + 1


def box_line(index: int) -> int:
    return SITE_LINES + 3 + index


def problems(tmp_path: Path, every: str, *boxes: str) -> list[str]:
    path = tmp_path / "desired.yaml"
    head = site_yaml(defaults={"disks": ["sda"], "schedule": {"backup_every": every}})
    path.write_text(head + "boxes:\n" + "".join(f"  - {b}\n" for b in boxes))
    with pytest.raises(DesiredStateError) as caught:
        load_desired(path)
    return caught.value.problems


def test_bad_duration_and_window_name_file_and_line(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        "7x",
        "{name: tb1, ip: 10.0.2.15}",
        '{name: tb2, ip: 10.0.2.16, schedule: {backup_every: 1d, window: "01:00-25:00"}}',
        "{name: tb3, ip: 10.0.2.17, power: {method: ipmi, address: 10.1.0.3, credentials: c, "
        "retry_after: soon}}",
    )
    where = str(tmp_path / "desired.yaml")
    assert found == [
        f"{where}:{DEFAULTS_LINE}: site.defaults.schedule.backup_every: '7x' is not a duration: "
        "<integer><unit> with unit s, m, h, d or w (e.g. 30m, 7d)",
        f"{where}:{box_line(1)}: boxes[1].schedule.window: '01:00-25:00' is not a window: "
        '"HH:MM-HH:MM" in UTC (e.g. "01:00-05:00")',
        f"{where}:{box_line(2)}: boxes[2].power.retry_after: 'soon' is not a duration: "
        "<integer><unit> with unit s, m, h, d or w (e.g. 30m, 7d)",
    ]


@pytest.mark.parametrize(
    ("power", "expected"),
    [
        ("{method: redfish, address: 'https://b', credentials: c, password: x}", "password: "),
        ("{method: ipmi, address: 10.1.0.3, credentials: c, username: x}", "username: "),
        ("{method: redfish, address: 'ftp://b', credentials: c}", "not an https:// (or http://)"),
        ("{method: redfish, address: 'https://b'}", "credentials: required for method redfish"),
        ("{method: ipmi, credentials: c}", "address: required for method ipmi"),
        ("{method: command}", "command: required for method command"),
        ("{method: command, command: [ssh, '{host}']}", "unknown placeholder 'host'"),
        ("{method: command, command: [echo, '{name']}", "bad placeholder"),
        ("{method: ipmi, address: 'a;b', credentials: c}", "not an RFC 1123 host name"),
    ],
)
def test_bad_power_configs(tmp_path: Path, power: str, expected: str) -> None:
    (found,) = problems(tmp_path, "7d", "{name: tb1, ip: 10.0.2.15, power: " + power + "}")
    assert f":{box_line(0)}: boxes[0].power" in found and expected in found, found


def test_a_box_name_with_a_semicolon_is_rejected_before_any_command_could_see_it(
    tmp_path: Path,
) -> None:
    (found,) = problems(
        tmp_path,
        "7d",
        "{name: 'tb1;reboot', ip: 10.0.2.15, power: {method: command, command: [echo, '{name}']}}",
    )
    assert "boxes[0].name" in found and "not an RFC 1123 host name" in found


def test_credentials_from_env_and_file(tmp_path: Path) -> None:
    assert env_prefix("lab-bmc") == "TESTBOX_CREDENTIALS_LAB_BMC"
    file = tmp_path / "creds.yaml"
    file.write_text(
        "lab-bmc: {username: admin, password: s3cret}\nother: {username: u, password: p}\n"
    )
    env = {
        "TESTBOX_CREDENTIALS_OTHER_USERNAME": "envu",
        "TESTBOX_CREDENTIALS_OTHER_PASSWORD": "envp",
    }
    source = CredentialSource(file, env=env)
    assert source.get("lab-bmc").password == "s3cret"
    assert source.get("other").username == "envu"  # the environment wins
    assert "s3cret" not in repr(source.get("lab-bmc"))
    with pytest.raises(
        ControllerError,
        match=r"credentials 'gone' not found: set "
        r"TESTBOX_CREDENTIALS_GONE_USERNAME and _PASSWORD or in .*creds.yaml",
    ):
        require_credentials(source, ["lab-bmc", "gone"])
    # The file named by the environment when no --credentials is given.
    assert CredentialSource(env={"TESTBOX_CREDENTIALS_FILE": str(file)}).get("lab-bmc")


def test_a_bad_credentials_file_is_one_line(tmp_path: Path) -> None:
    file = tmp_path / "creds.yaml"
    file.write_text("lab-bmc: {username: admin}\n")
    with pytest.raises(ControllerError, match="lab-bmc: expected"):
        CredentialSource(file, env={})
