"""Start-up: a share that comes up late is waited for once; pure helpers behind start-up."""

import ipaddress
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from onbox.errors import ServiceError
from onbox.service.disks import discover_disks, read_disk_list
from onbox.service.request import parse_cmdline
from onbox.service.startup import HostnameLookup, first_ipv4, interface_ipv4s
from onbox.shareio import Share
from schema.layout import BACKUP_MARKER
from tests.service.lab import BoxLab, make_disk, service_command


@pytest.mark.slow
def test_share_mounted_during_the_pause_is_used(lab: BoxLab) -> None:
    request = lab.request("refresh-info")
    append = lab.arm(request)
    (lab.backup / BACKUP_MARKER).unlink()
    argv = [*service_command(), "--no-reboot", "--retry-pause", "3", "--ip", lab.ip]
    argv += ["--tftp-root", str(lab.tftp), "--backup-root", str(lab.backup)]
    argv += ["--cmdline", append, "--disk", f"sda={make_disk(lab.root / 'sda.img', 4096)}"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first_line = proc.stdout.readline()
    assert "testbox-maintenance" in first_line
    waiting = proc.stdout.readline() + proc.stdout.readline()
    assert "backup share not mounted" in waiting and "waiting 3 s" in waiting
    (lab.backup / BACKUP_MARKER).write_text("")  # the NFS mount arrives
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stdout + stderr
    assert lab.result(request).outcome == "success"


def test_first_ipv4_is_not_loopback() -> None:
    assert interface_ipv4s()  # at least lo
    try:
        ip = first_ipv4()
    except ServiceError as exc:
        pytest.skip(f"no network here: {exc.message}")
    assert not ipaddress.IPv4Address(ip).is_loopback


@pytest.mark.parametrize(
    ("cmdline", "expected"),
    [
        (
            "initrd=x testbox-action-backup testbox-request=0123456789ab ro ip=dhcp\n",
            ("backup", "0123456789ab"),
        ),
        (
            "testbox-request=abcdefabcdef testbox-action-backup-again",
            ("backup-again", "abcdefabcdef"),
        ),
        (
            "BOOT_IMAGE=/v testbox-action-rescue testbox-request=000000000000",
            ("rescue", "000000000000"),
        ),
    ],
)
def test_parse_cmdline(cmdline: str, expected: tuple[str, str]) -> None:
    boot = parse_cmdline(cmdline)
    assert (boot.action, boot.request_id) == expected


@pytest.mark.parametrize(
    ("cmdline", "message"),
    [
        ("ro quiet", "no testbox-action-<action>"),
        ("testbox-action-backup", "no testbox-request=<id>"),
        ("testbox-action-backup testbox-request=XYZ", "is not 12 hex digits"),
        ("testbox-action-backup testbox-action-restore testbox-request=0123456789ab", "several"),
        ("testbox-action-wipe testbox-request=0123456789ab", "unknown action 'wipe'"),
    ],
)
def test_parse_cmdline_errors(cmdline: str, message: str) -> None:
    with pytest.raises(ServiceError, match=message):
        parse_cmdline(cmdline)


def test_discover_disks_keeps_real_disks_only(tmp_path: Path) -> None:
    names = ["sda", "sdb", "hda", "vda", "xvda", "nvme0n1", "nvme1n2", "loop0", "ram0", "sr0",
             "dm-0", "zram0", "md127", "nbd0", "mmcblk0"]  # fmt: skip
    for name in names:
        (tmp_path / name).mkdir()
    assert discover_disks(tmp_path) == ["hda", "nvme0n1", "nvme1n2", "sda", "sdb", "vda", "xvda"]


def test_read_disk_list(tmp_path: Path) -> None:
    path = tmp_path / "disk-devices.lst"
    box = Share(tmp_path)
    assert read_disk_list(box) is None
    path.write_text("sda\n\n/dev/sdb  # data disk\n# sdc\nsda\n")
    assert read_disk_list(box) == ["sda", "sdb"]
    path.write_text("sda\n../etc\n")
    with pytest.raises(ServiceError, match=r"disk-devices.lst:2: '../etc' is not a whole-disk"):
        read_disk_list(box)


def test_start_up_is_quick(lab: BoxLab) -> None:
    """The service starts on every maintenance boot: --help must not import the world."""
    started = time.monotonic()
    done = subprocess.run([*service_command(), "--help"], capture_output=True, check=False)
    assert done.returncode == 0
    assert time.monotonic() - started < 5


def _slow(seconds: float, name: str) -> Callable[[str], str]:
    def resolve(ip: str) -> str:
        time.sleep(seconds)
        return name

    return resolve


def test_hostname_lookup_runs_beside_the_session_and_is_waited_for_once() -> None:
    """A slow DNS server costs nothing when the name is asked for after it answered."""
    started = time.monotonic()
    lookup = HostnameLookup("10.0.0.5", timeout=3.0, resolve=_slow(0.3, "box-17"))
    assert time.monotonic() - started < 0.1  # started, not waited for
    time.sleep(0.4)  # the session's work (a restore) meanwhile
    asked = time.monotonic()
    assert lookup.name() == "box-17"
    assert time.monotonic() - asked < 0.05


def test_hostname_lookup_waits_at_most_until_its_deadline_from_the_start() -> None:
    lookup = HostnameLookup("10.0.0.5", timeout=0.3, resolve=_slow(0.6, "late"))
    time.sleep(0.2)
    asked = time.monotonic()
    assert lookup.name() == "unknown"
    assert time.monotonic() - asked < 0.25  # the 0.1 s left, not another 0.3 s
    time.sleep(0.6)  # the answer comes in after all
    assert lookup.name() == "unknown"  # one session, one host name (info, result, logs)


@pytest.mark.parametrize(
    ("answer", "name"),
    [("box-3.lab.example", "box-3.lab.example"), ("../etc", "unknown"), ("a..b", "unknown"),
     ("x\ny", "unknown"), ("", "unknown")],
)  # fmt: skip
def test_hostname_lookup_accepts_only_plain_host_names(answer: str, name: str) -> None:
    assert HostnameLookup("10.0.0.5", resolve=lambda ip: answer).name() == name


def test_a_failed_lookup_is_unknown() -> None:
    def refuse(ip: str) -> str:
        raise OSError("Unknown host")

    assert HostnameLookup("10.0.0.5", resolve=refuse).name() == "unknown"
