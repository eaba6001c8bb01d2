"""The e2e harness's one retry: a guest kernel that hangs before /init is powered on again, once;
a hang anywhere else, or a second kernel hang, is reported as it is. QEMU is replaced by a
shell script printing what a boot's serial console would (the real QEMU runs in tests/e2e)."""

from pathlib import Path

import pytest

from tests.e2e import harness
from tests.e2e.harness import KERNEL_BANNER, KERNEL_TO_INIT, Box


class ScriptedBox(Box):
    """A Box whose power-ons run the given shell scripts in turn (the last one repeats)."""

    scripts: list[str]

    def command(self, *, bootindex: bool = False) -> list[str]:
        return ["sh", "-c", self.scripts[min(self.boots - 1, len(self.scripts) - 1)]]


HANG_IN_KERNEL = f"echo '{KERNEL_BANNER} 6.1'; echo 'IP idents hash table'; exec sleep 30"
BOOTS = f"echo '{KERNEL_BANNER} 6.1'; echo '{KERNEL_TO_INIT}'; echo up; exit 3"
HANG_IN_USERSPACE = f"echo '{KERNEL_BANNER} 6.1'; echo '{KERNEL_TO_INIT}'; exec sleep 30"


def _box(tmp_path: Path, *scripts: str) -> ScriptedBox:
    box = ScriptedBox(tmp_path, tmp_path, tmp_path, tmp_path, tmp_path)
    box.scripts = list(scripts)
    return box


@pytest.fixture(autouse=True)
def _short_hang(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "KERNEL_HANG_SECONDS", 0.3)


def test_a_kernel_hang_is_powered_on_again_once(tmp_path: Path) -> None:
    box = _box(tmp_path, HANG_IN_KERNEL, BOOTS)
    result = box.boot(timeout=10)
    assert (result.ended, result.exit_status, box.boots) == ("exit", 3, 2)
    assert "up" in result.serial
    assert "hung before /init" in (tmp_path / "boots.txt").read_text()


def test_a_second_kernel_hang_is_the_result(tmp_path: Path) -> None:
    box = _box(tmp_path, HANG_IN_KERNEL)
    result = box.boot(timeout=10)
    assert (result.ended, box.boots) == ("kernel-hang", 2)


def test_silence_after_init_is_not_retried(tmp_path: Path) -> None:
    box = _box(tmp_path, HANG_IN_USERSPACE)
    result = box.boot(timeout=1)
    assert (result.ended, box.boots) == ("timeout", 1)
