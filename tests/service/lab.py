"""A box's view of two temp shares, armed the way the controller arms it (contract §2-3), and a
runner for the real `testbox-maintenance` entry point in a subprocess."""

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from controller.core.boxfiles import disk_list_text, request_json_text
from controller.core.render import render_box_config
from schema.desired import DesiredState, EffectiveBox
from schema.layout import (
    BACKUP_MARKER,
    DISK_LIST,
    PXE_CFG_DIR,
    PXELINUX_BOOTFILE,
    REQUEST_FILE,
)
from schema.request import Request, Result
from tests.lab_paths import MINIMAL_SITE, LabPaths


def service_command() -> list[str]:
    """The installed console script (next to this interpreter, else on PATH)."""
    sibling = Path(sys.executable).parent / "testbox-maintenance"
    if sibling.exists():
        return [str(sibling)]
    found = shutil.which("testbox-maintenance")
    if found:
        return [found]
    return [sys.executable, "-m", "onbox.service.main"]


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


@dataclass
class BoxLab(LabPaths):
    """A box's view of the two shares; the files it is armed with are the controller's own."""

    def make_shares(self) -> "BoxLab":
        (self.tftp / PXE_CFG_DIR).mkdir(parents=True)
        (self.tftp / PXELINUX_BOOTFILE).write_bytes(b"pxelinux")
        (self.tftp / PXE_CFG_DIR / "default").write_text("PATH bios\nDEFAULT local-boot\n")
        self.backup.mkdir(parents=True)
        (self.backup / BACKUP_MARKER).write_text("")
        return self

    def request(
        self,
        action: str,
        disks: list[str] | None = None,
        image: str | None = None,
        token: str | None = None,
        max_attempts: int = 3,
    ) -> Request:
        box: dict[str, object] = {"name": self.name, "ip": self.ip, "action": action}
        if disks:
            box["disks"] = disks
        if image:
            box["image"] = image
        if token:
            box["request"] = token
        box["max_attempts"] = max_attempts
        state = DesiredState.model_validate({"site": MINIMAL_SITE, "boxes": [box]})
        return Request.for_box(state.effective_boxes()[0])

    def arm(self, request: Request) -> str:
        """Managed PXE config + request.json + disk-devices.lst, rendered by the controller's own
        renderers (so the service is tested on exactly what testboxctl writes); returns the
        config's APPEND line."""
        state = DesiredState.model_validate({"site": MINIMAL_SITE, "boxes": []})
        box = EffectiveBox(
            name=request.box,
            ip=request.ip,
            mac=None,
            action=request.action,
            disks=request.disks,
            image=request.image,
            request=request.token,
            retention=state.site.defaults.retention,
            max_attempts=request.max_attempts,
        )
        config = render_box_config(state.site, box, request.request_id)
        self.config.write_text(config)
        self.box_dir.mkdir(parents=True, exist_ok=True)
        (self.box_dir / REQUEST_FILE).write_text(request_json_text(request))
        (self.box_dir / DISK_LIST).write_text(disk_list_text(request.disks))
        return next(
            line.strip()[len("APPEND ") :]
            for line in config.splitlines()
            if line.strip().startswith("APPEND ")
        )

    def run(
        self,
        cmdline: str | None,
        *extra: str,
        disks: dict[str, Path] | None = None,
        ip: str | None = None,
        path: Path | None = None,
        reboot_shims: Path | None = None,
        retry_pause: float = 0,
        timeout: float = 120,
    ) -> Run:
        """Run the service; with `reboot_shims` (see `reboot_shims`) without --no-reboot."""
        argv = [*service_command(), "--retry-pause", f"{retry_pause:g}"]
        if reboot_shims is None:
            argv.append("--no-reboot")
        argv += ["--tftp-root", str(self.tftp), "--backup-root", str(self.backup)]
        argv += ["--ip", ip or self.ip]
        if cmdline is not None:
            argv += ["--cmdline", cmdline]
        for name, path in (disks or {}).items():
            argv += ["--disk", f"{name}={path}"]
        argv += list(extra)
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        if path is not None:
            env["PATH"] = str(path)
        if reboot_shims is not None:
            env["PATH"] = f"{reboot_shims}{os.pathsep}{env['PATH']}"
            # Never let a test reboot the machine it runs on.
            for command in ("reboot", "systemctl"):
                found = shutil.which(command, path=env["PATH"])
                assert found == str(reboot_shims / command), found
        done = subprocess.run(
            argv, check=False, capture_output=True, text=True, timeout=timeout, env=env
        )
        return Run(done.returncode, done.stdout, done.stderr)

    def result(self, request: Request) -> Result:
        path = self.box_dir / "results" / f"{request.request_id}.json"
        return Result.model_validate_json(path.read_bytes())

    def box_log(self) -> str:
        return (self.box_dir / "maintenance.log").read_text()

    def global_log(self) -> str:
        path = self.backup / "maintenance.log"
        return path.read_text() if path.exists() else ""


def reboot_shims(directory: Path) -> Path:
    """`reboot` and `systemctl` stand-ins that record how they were called in `calls`: the
    real ones would reboot the machine running the tests."""
    directory.mkdir()
    for command in ("reboot", "systemctl"):
        shim = directory / command
        shim.write_text(f'#!/bin/sh\necho "{command} $*" >> "{directory}/calls"\n')
        shim.chmod(0o755)
    return directory


def make_disk(path: Path, size: int, seed: int = 1) -> Path:
    """A disk image file: pseudo-random content with zero runs (like a real disk)."""
    import random

    rng = random.Random(seed)
    data = bytearray(rng.randbytes(size))
    # Zero the second quarter: all-zero chunks are part of every real disk.
    data[size // 4 : size // 2] = bytes(size // 4)
    path.write_bytes(bytes(data))
    return path
