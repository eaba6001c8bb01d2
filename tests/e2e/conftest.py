"""Fixtures of the network-boot tests: prerequisites, a lab per test, a box, kept serial logs.

The tests need QEMU, PXELINUX/SYSLINUX, root (9p shares of root-owned files, debootstrap) and a
maintenance root built by `.ci/e2e-prepare` (`testboxctl build-maintenance-root`). Without them
the tests skip, unless TESTBOX_E2E_REQUIRED=1 (CI): then a missing prerequisite is a failure.

Serial logs of every boot go to the test's tmp dir; when a test fails they are copied to
`tests/e2e/artifacts/<test>/` and the path is printed.
"""

import os
import shutil
import subprocess
import sys
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.e2e import nfs, timing
from tests.e2e.harness import PXELINUX, QEMU, SYSLINUX_BIOS
from tests.e2e.lab import BOX_IP, BOX_NAME, E2ELab

REQUIRED = os.environ.get("TESTBOX_E2E_REQUIRED") == "1"
CACHE = Path(os.environ.get("TESTBOX_E2E_CACHE", "/var/cache/testboxctl"))
ROOT = Path(os.environ.get("TESTBOX_E2E_ROOT", str(CACHE / "maintenance-root")))
ARTIFACTS = Path(__file__).parent / "artifacts"


def missing_prerequisites() -> list[str]:
    missing = []
    if shutil.which(QEMU) is None:
        missing.append(f"{QEMU} (Debian package qemu-system-x86)")
    if not PXELINUX.is_file():
        missing.append(f"{PXELINUX} (Debian package pxelinux)")
    if not (SYSLINUX_BIOS / "ldlinux.c32").is_file():
        missing.append(f"{SYSLINUX_BIOS}/ldlinux.c32 (Debian package syslinux-common)")
    if os.geteuid() != 0:
        missing.append("root (the maintenance root's files are root-only; debootstrap)")
    if not (ROOT / ".testboxctl-root.json").is_file():
        missing.append(f"the maintenance root at {ROOT} (run .ci/e2e-prepare)")
    return missing


@pytest.fixture(scope="session")
def maintenance_root() -> Path:
    missing = missing_prerequisites()
    if missing:
        message = "network-boot prerequisites missing: " + "; ".join(missing)
        if REQUIRED:
            pytest.fail(message + " (TESTBOX_E2E_REQUIRED=1: a skip would hide this)")
        pytest.skip(message)
    # Calibrate the boot timeouts before this session's first boot adds load of its own.
    factor = timing.scale()
    print(f"\ne2e boot timeouts scaled x{factor:.2f} for the machine's current load")
    return ROOT


def testboxctl_command() -> list[str]:
    sibling = Path(sys.executable).parent / "testboxctl"
    return [str(sibling)] if sibling.exists() else ["testboxctl"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    item.stash.setdefault(_FAILED, False)
    if report.failed:
        item.stash[_FAILED] = True
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def lab(maintenance_root: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[E2ELab]:
    """A fresh lab (`testboxctl init --lab`) with the maintenance kernel published into it."""
    started = subprocess.run(
        [*testboxctl_command(), "init", "--lab", str(tmp_path / "lab")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert started.returncode == 0, started.stderr
    # Also refreshes the root's project layer when the sources changed since .ci/e2e-prepare.
    built = subprocess.run(
        [
            *testboxctl_command(),
            "build-maintenance-root",
            "--out",
            str(maintenance_root),
            "--cache",
            str(CACHE),
            "--tftp-root",
            str(tmp_path / "lab" / "tftp"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    logs = tmp_path / "serial"
    logs.mkdir()
    transport = getattr(request, "param", "nfs")
    the_lab = E2ELab(
        tmp_path / "lab",
        BOX_IP,
        BOX_NAME,
        maintenance_root=maintenance_root,
        log_dir=logs,
        testboxctl=testboxctl_command(),
        transport=transport,
    )
    if transport == "nfs":
        missing = nfs.missing()
        if missing:
            message = "NFS server for the network-boot tests missing: " + "; ".join(missing)
            if REQUIRED:
                pytest.fail(message)
            pytest.skip(message)
        with nfs.nfs_exports(maintenance_root, the_lab.tftp, the_lab.backup, logs):
            yield the_lab
    else:
        yield the_lab
    if request.node.stash.get(_FAILED, False):
        kept = ARTIFACTS / request.node.name
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(logs, kept)
        for extra in ("desired.yaml", "backup/maintenance.log"):
            if (the_lab.root / extra).exists():
                shutil.copy2(the_lab.root / extra, kept / Path(extra).name)
        print(f"\nserial logs of {request.node.nodeid} kept in {kept}")
