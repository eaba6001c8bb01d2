"""Timed steps shared by the imaging benchmark's parts: shell baselines, engine children,
and interleaved rounds.

The machine is shared with other work: steps that are compared with each other run in
interleaved rounds (baseline, engine, baseline, engine, ...), `repeat` rounds, each on fresh
output, and the fastest run of each step counts. A load spike then hits both sides.

What a step calls warm (the box's disk for a backup, the store for a warm restore) is read
into the page cache right before that step, untimed (`warmed`), not once at the start: this
machine runs DAMON with a `pageout` scheme that evicts page-cache pages idle for about a
minute, and a backup round takes longer than that. Warmed once, a later round's "warm" disk
was partly read from the disk again, and the backup figures moved by 30% from run to run.
"""

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

Step = Callable[[], dict[str, Any]]


def sh(command: str) -> float:
    """Run `command` under bash with pipefail; its wall time in seconds."""
    t0 = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", command], check=True)
    return time.perf_counter() - t0


def shell(command: str) -> Step:
    """A step that runs `command` (see `sh`) and reports its seconds."""
    return lambda: {"seconds": sh(command)}


def warm(*paths: Path) -> None:
    """Read every file at or under `paths` into the page cache (nothing is timed here)."""
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            with open(file, "rb", buffering=0) as f:
                while f.read(1 << 20):
                    pass


def warmed(step: Step, *paths: Path) -> Step:
    """`step`, with `paths` read into the page cache right before it (untimed)."""

    def run() -> dict[str, Any]:
        warm(*paths)
        return step()

    return run


def child(*args: str) -> dict[str, Any]:
    """One engine run in a process of its own (benchmarks._imaging_child); its JSON + wall."""
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks._imaging_child", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    result["wall"] = time.perf_counter() - t0
    return result


def interleaved(steps: dict[str, Step], repeat: int) -> dict[str, dict[str, Any]]:
    """Each step `repeat` times in rounds; the fastest run of each (by "seconds")."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in steps}
    for _round in range(max(1, repeat)):
        for name, step in steps.items():
            runs[name].append(step())
    return {name: min(rs, key=lambda res: float(res["seconds"])) for name, rs in runs.items()}


def store_bytes(root: Path) -> int:
    """What the chunks of the store under backup share `root` take."""
    return sum(p.stat().st_size for p in (root / "store" / "chunks").rglob("*.zst"))


def mbps(size: int, seconds: float) -> float:
    return size / seconds / 1e6


def fresh_target(path: Path, size: int) -> Path:
    """An empty (sparse) file of `size` bytes to restore onto."""
    with open(path, "wb") as f:
        f.truncate(size)
    return path
