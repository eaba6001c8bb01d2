"""`testboxctl init --lab DIR` through the real entry point: a lab testboxctl can run on at once."""

import shutil
import stat
from pathlib import Path

import pytest

from schema.layout import DEFAULT_CONFIG_TEXT
from tests.cli.runner import run_cli

REPO = Path(__file__).resolve().parents[2]
PXELINUX = Path("/usr/lib/PXELINUX/pxelinux.0")
BIOS = Path("/usr/lib/syslinux/modules/bios")
SYSLINUX_EFI = Path("/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi")
EFI64 = Path("/usr/lib/syslinux/modules/efi64")


def test_init_creates_shares_markers_and_a_desired_file_that_reconciles(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    run = run_cli("init", "--lab", lab)
    assert run.returncode == 0, run.stderr
    default = lab / "tftp" / "pxelinux.cfg" / "default"
    assert default.read_text() == DEFAULT_CONFIG_TEXT
    assert stat.S_IMODE(default.stat().st_mode) == 0o644
    assert (lab / "backup" / "testbox-backup").is_file()
    assert run_cli("validate", "-f", lab / "desired.yaml").returncode == 0
    # The sample has boxes with actions: a dry run finds work, reconcile does it, then in sync.
    assert run_cli("reconcile", "--dry-run", "-f", lab / "desired.yaml").returncode == 2
    assert run_cli("reconcile", "-f", lab / "desired.yaml").returncode == 0
    assert run_cli("reconcile", "--dry-run", "-f", lab / "desired.yaml").returncode == 0
    assert (lab / "tftp" / "pxelinux.cfg" / "0A00020F").is_file()
    # No temp files left behind by the atomic writes.
    assert not [p for p in lab.rglob(".*.tmp")]


@pytest.mark.skipif(not PXELINUX.is_file() or not BIOS.is_dir(), reason="pxelinux not installed")
def test_init_copies_pxelinux_files_from_the_debian_packages(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    assert run_cli("init", "--lab", lab).returncode == 0
    tftp = lab / "tftp"
    assert (tftp / "pxelinux.0").read_bytes() == PXELINUX.read_bytes()
    assert (tftp / "ldlinux.c32").read_bytes() == (BIOS / "ldlinux.c32").read_bytes()
    assert sorted(p.name for p in (tftp / "bios").iterdir()) == sorted(
        p.name for p in BIOS.iterdir() if p.is_file()
    )


@pytest.mark.skipif(
    not SYSLINUX_EFI.is_file() or not EFI64.is_dir(), reason="syslinux-efi not installed"
)
def test_init_copies_the_uefi_loader_and_modules_as_the_seed_does(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    run = run_cli("init", "--lab", lab)
    assert run.returncode == 0, run.stderr
    tftp = lab / "tftp"
    assert (tftp / "syslinux.efi").read_bytes() == SYSLINUX_EFI.read_bytes()
    for directory, ldlinux in (("efi64", "ldlinux.e64"), ("efi32", "ldlinux.e32")):
        source = EFI64.parent / directory
        assert (tftp / ldlinux).read_bytes() == (source / ldlinux).read_bytes()
        assert sorted(p.name for p in (tftp / directory).iterdir()) == sorted(
            p.name for p in source.iterdir() if p.is_file()
        )
        assert f"{directory}/ (" in run.stdout
    assert "not installed" not in run.stdout


def test_init_says_so_when_pxelinux_is_not_installed(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    run = run_cli(
        "init",
        "--lab",
        lab,
        "--pxelinux",
        tmp_path / "missing" / "pxelinux.0",
        "--syslinux-bios",
        tmp_path / "missing" / "bios",
        "--syslinux-efi",
        tmp_path / "missing" / "syslinux.efi",
    )
    assert run.returncode == 0, run.stderr
    assert "Debian package pxelinux not installed" in run.stdout
    assert "Debian package syslinux-common not installed" in run.stdout
    assert "Debian package syslinux-efi not installed" in run.stdout
    assert "no UEFI box can boot" in run.stdout
    assert "no ldlinux.e64 and no efi64/ modules" in run.stdout
    assert not (lab / "tftp" / "pxelinux.0").exists()
    assert not (lab / "tftp" / "syslinux.efi").exists()
    assert (lab / "tftp" / "pxelinux.cfg" / "default").is_file()


def test_init_refuses_a_non_empty_directory_unless_forced(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    assert run_cli("init", "--lab", lab).returncode == 0
    box_file = lab / "backup" / "10.0.2.15" / "keep-me"
    box_file.parent.mkdir()
    box_file.write_text("operator data")
    (lab / "tftp" / "pxelinux.cfg" / "default").write_text("hand-edited\n")

    again = run_cli("init", "--lab", lab)
    assert again.returncode == 1
    assert "exists and is not empty" in again.stderr and "--force" in again.stderr
    assert (lab / "tftp" / "pxelinux.cfg" / "default").read_text() == "hand-edited\n"

    forced = run_cli("init", "--lab", lab, "--force")
    assert forced.returncode == 0, forced.stderr
    assert (lab / "tftp" / "pxelinux.cfg" / "default").read_text() == DEFAULT_CONFIG_TEXT
    assert box_file.read_text() == "operator data"


def test_init_without_lab_option_and_on_a_file(tmp_path: Path) -> None:
    assert "init needs --lab DIR" in run_cli("init").stderr
    (tmp_path / "file").write_text("x")
    run = run_cli("init", "--lab", tmp_path / "file")
    assert run.returncode == 1 and "not a directory" in run.stderr


def test_repo_sample_works_with_init_lab_from_the_project_root(tmp_path: Path) -> None:
    """README's first command: `init --lab lab` + reconcile with the default `-f desired/`."""
    project = tmp_path / "project"
    shutil.copytree(REPO / "desired", project / "desired")
    assert run_cli("init", "--lab", "lab", cwd=project).returncode == 0
    assert run_cli("reconcile", "--dry-run", cwd=project).returncode == 2
    assert run_cli("reconcile", cwd=project).returncode == 0
    assert run_cli("reconcile", "--dry-run", cwd=project).returncode == 0
    assert run_cli("status", cwd=project).returncode == 0


def test_init_force_never_writes_through_a_link_in_the_lab(tmp_path: Path) -> None:
    """`init --force` refreshes through onbox.shareio: a linked pxelinux.cfg/ is refused."""
    lab, outside = tmp_path / "lab", tmp_path / "outside"
    assert run_cli("init", "--lab", lab).returncode == 0
    outside.mkdir()
    (outside / "default").write_text("outside\n")
    shutil.rmtree(lab / "tftp" / "pxelinux.cfg")
    (lab / "tftp" / "pxelinux.cfg").symlink_to(outside)

    forced = run_cli("init", "--lab", lab, "--force")
    assert forced.returncode == 1
    assert "pxelinux.cfg: is a symbolic link" in forced.stderr
    assert "Traceback" not in forced.stderr
    assert sorted(p.name for p in outside.iterdir()) == ["default"]
    assert (outside / "default").read_text() == "outside\n"
