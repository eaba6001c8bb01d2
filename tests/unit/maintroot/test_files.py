"""The scripts the builder writes into the maintenance root: valid shell, and doing what the
boot needs (run for real where they can run outside a boot: the 9p share generator)."""

import subprocess
from pathlib import Path

import pytest

from controller.tools.maintroot import files

SCRIPTS = {
    "init-bottom overlay": files.OVERLAY_INIT_BOTTOM,
    "initramfs 9p hook": files.NINEP_ROOT_HOOK,
    "9p share generator": files.NINEP_SHARES_GENERATOR,
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_scripts_are_valid_posix_shell(name: str, tmp_path: Path) -> None:
    script = tmp_path / "script"
    script.write_text(SCRIPTS[name])
    checked = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    assert SCRIPTS[name].startswith("#!/bin/sh\n")


def run_generator(tmp_path: Path, cmdline: str) -> list[Path]:
    """The generator with /proc/cmdline pointed at a file: its units land in `early`."""
    (tmp_path / "cmdline").write_text(cmdline + "\n")
    script = tmp_path / "generator"
    script.write_text(
        files.NINEP_SHARES_GENERATOR.replace("/proc/cmdline", str(tmp_path / "cmdline"))
    )
    early = tmp_path / "early"
    early.mkdir()
    done = subprocess.run(
        ["sh", str(script), str(tmp_path / "normal"), str(early), str(tmp_path / "late")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return sorted(early.iterdir())


@pytest.mark.parametrize("flag", ["testbox.transport=9p", "testbox.shares=9p"])
def test_generator_mounts_both_shares_over_9p_when_asked(tmp_path: Path, flag: str) -> None:
    units = run_generator(tmp_path, f"ro boot=nfs root=/dev/nfs {flag} quiet")
    # systemd's names for /mnt/testbox-backup and /mnt/testbox-tftp (systemd-escape --path).
    assert [u.name for u in units] == [
        "mnt-testbox\\x2dbackup.mount",
        "mnt-testbox\\x2dtftp.mount",
    ]
    tftp = units[1].read_text()
    assert "What=testbox-tftp\n" in tftp
    assert "Where=/mnt/testbox-tftp\n" in tftp
    assert "Type=9p\n" in tftp


@pytest.mark.parametrize(
    "cmdline", ["ro boot=nfs root=/dev/nfs nfsroot=10.0.2.2:/x,ro,tcp", "testbox.transport=nfs"]
)
def test_generator_leaves_the_nfs_fstab_alone_otherwise(tmp_path: Path, cmdline: str) -> None:
    assert run_generator(tmp_path, cmdline) == []


def test_fstab_has_the_seed_shares_over_nfs3_tcp_on_demand() -> None:
    lines = [
        line.split()
        for line in files.fstab(
            "10.42.1.1", "/export/testbox-tftp", "/export/testbox-backup"
        ).splitlines()
        if line and not line.startswith("#")
    ]
    mounts = {fields[1]: fields for fields in lines}
    assert mounts["/mnt/testbox-tftp"][0] == "10.42.1.1:/export/testbox-tftp"
    assert mounts["/mnt/testbox-backup"][0] == "10.42.1.1:/export/testbox-backup"
    for share in ("/mnt/testbox-tftp", "/mnt/testbox-backup"):
        options = mounts[share][3].split(",")
        assert mounts[share][2] == "nfs"
        assert {"tcp", "nfsvers=3", "nolock", "noauto"} <= set(options)


def test_overlay_script_keeps_the_layers_reachable_like_the_seeds_aufs() -> None:
    script = files.OVERLAY_INIT_BOTTOM
    assert "mount -t overlay" in script
    assert 'mount --move /ro "${rootmnt}/ro"' in script
    assert 'mount --move /rw "${rootmnt}/rw"' in script


def test_lean_boot_masks_udev_settle_and_orders_after_coldplug_trigger() -> None:
    """Issue 13.6: no udev-settle (the service waits for its own disks), coldplug triggered."""
    assert "systemd-udev-settle.service" in files.MASKED_UNITS
    assert "After=systemd-udev-trigger.service" in files.SERVICE_DISKS_DROPIN
    assert "settle" not in files.SERVICE_DISKS_DROPIN
    # Rescue logs in on the console: what lets logins in must stay.
    assert "systemd-user-sessions.service" not in files.MASKED_UNITS
    assert len(set(files.MASKED_UNITS)) == len(files.MASKED_UNITS)
