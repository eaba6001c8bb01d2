"""The benchmark's generated lab is what the real writers leave: reconcile only arms new requests.

If the generator drifted from the formats of apply, the store or the service, the benchmark would
time a lab full of rewrites; this keeps it honest.
"""

from pathlib import Path

import pytest

from benchmarks.lab_gen import box_ip, generate
from schema.layout import hex_ip
from tests.cli.runner import run_cli


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_generated_lab_is_in_sync_except_the_new_requests(tmp_path: Path) -> None:
    figures = generate(tmp_path / "lab", 40)
    assert figures.files > 40 * 10
    desired = tmp_path / "lab" / "desired.yaml"
    before = _files(tmp_path / "lab" / "tftp")
    assert run_cli("reconcile", "--dry-run", "-f", desired).returncode == 2
    assert run_cli("reconcile", "-f", desired).returncode == 0
    assert run_cli("reconcile", "--dry-run", "-f", desired).returncode == 0
    after = _files(tmp_path / "lab" / "tftp")
    # Boxes 9 and 29 (a new backup-again request each) got a config; nothing else changed.
    new = sorted(set(after) - set(before))
    assert new == [f"pxelinux.cfg/{hex_ip(box_ip(i))}" for i in (9, 29)]
    assert {k: v for k, v in after.items() if k in before} == before
