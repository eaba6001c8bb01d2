"""Controller and on-box service, the whole loop: arm → maintenance boot → observed done."""

import hashlib
from pathlib import Path

from tests.loop.conftest import Loop
from tests.service.lab import make_disk

MiB = 1 << 20


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def arm(loop: Loop, action: str, **kw: object) -> None:
    loop.want(action, **kw)  # type: ignore[arg-type]
    done = loop.reconcile()
    assert done.code == 0, done.stderr
    assert loop.config.exists()
    assert loop.status()["state"] == "armed"


def assert_done(loop: Loop) -> None:
    dry = loop.reconcile("--dry-run")
    assert dry.code == 0, dry.stdout + dry.stderr
    assert not loop.config.exists()
    box = loop.status()
    assert box["state"] == "done", box
    assert box["last_result"]["outcome"] == "success"


def test_refresh_info_loop(loop: Loop, tmp_path: Path) -> None:
    disk = make_disk(tmp_path / "sda.img", 2 * MiB)
    arm(loop, "refresh-info")
    boot = loop.boot(disk)
    assert boot.code == 0, boot.stderr
    assert (loop.backup / loop.ip / "testbox-info.txt").exists()
    assert_done(loop)
