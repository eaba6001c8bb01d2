"""Old bases in a shared cache: the most recently used few are kept, the rest removed."""

import os
from pathlib import Path

from controller.tools.maintroot.build import KEPT_BASES, _prune_bases


def test_prune_keeps_the_current_and_the_most_recently_used_others(tmp_path: Path) -> None:
    bases = []
    for age in range(5):
        base = tmp_path / f"base-{age}"
        base.mkdir()
        (base / "file").write_text("x")
        os.utime(base, (1_000_000 - age * 100, 1_000_000 - age * 100))
        bases.append(base)
    current = tmp_path / "base-current"
    current.mkdir()
    (tmp_path / "base-x.tmp").mkdir()  # a build in progress is never touched
    _prune_bases(tmp_path, keep=current)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert KEPT_BASES == 3  # the current one and the two most recently used others
    assert left == ["base-0", "base-1", "base-current", "base-x.tmp"]
