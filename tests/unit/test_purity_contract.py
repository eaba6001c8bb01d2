"""The import-linter contracts really hold the core pure: break one on purpose, see it fail.

A contract that stays green whatever one imports proves nothing (issue 13.2 found exactly that).
This copies the tree to a temp directory, adds one forbidden import to the pure planner and runs
`lint-imports` there: the unmodified copy passes, each modified one fails naming the contract.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAN_BOX = Path("controller/core/plan_box.py")


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "lint-imports"
    return subprocess.run(
        [str(exe) if exe.exists() else "lint-imports", "--no-cache"],
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def _copy(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    tree.mkdir()
    for package in ("schema", "controller", "onbox"):
        shutil.copytree(
            ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


@pytest.mark.parametrize("added", [None, "import os", "import controller.io.observe"])
def test_the_pure_core_contract_fails_on_a_forbidden_import(
    tmp_path: Path, added: str | None
) -> None:
    tree = _copy(tmp_path)
    if added is not None:
        module = tree / PLAN_BOX
        text = module.read_text()
        # After the docstring, before the first import: a plain top-level import.
        first = text.index("\nfrom ")
        module.write_text(f"{text[: first + 1]}{added}\n{text[first + 1 :]}")
    done = _lint_imports(tree)
    if added is None:
        assert done.returncode == 0, done.stdout + done.stderr
    else:
        assert done.returncode != 0, done.stdout
        assert "BROKEN" in done.stdout and "the core is pure" in done.stdout
        assert "controller.core.plan_box" in done.stdout
