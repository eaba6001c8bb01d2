"""Boot timeouts that scale with how busy the machine is, measured once per test session.

The e2e boots run QEMU under TCG (no KVM here), so a boot's wall time is CPU time: QEMU's two
vCPU threads want both cores, and with a parallel CPU load of 2 a boot takes about twice as
long. Fixed limits either fail on a busy machine (issue 13.6: all four scenarios hit their
170 s limit) or are so loose on a quiet one that a real hang costs many minutes. So each limit
is a quiet-machine figure (with margin) times `scale()`, made of two measured factors:

* contention: two busy processes (like the two vCPUs) run for CALIBRATION_SECONDS; the share of
  a core each got (CPU time / wall time) says how much of the machine a boot will get;
* speed: the CPU time of a fixed loop against REFERENCE_CPU_SECONDS, measured on a quiet
  machine of this kind (2 cores, Debian 12, Python 3.11), for slower CI machines.

Both are at least 1 (never tighter than quiet) and the product is capped at MAX_SCALE.
TESTBOX_E2E_TIME_SCALE overrides the measurement. The calibration samples the load at session
start; load that starts later is covered by the margin in the base figures.
"""

import functools
import multiprocessing
import os
import time

CALIBRATION_SECONDS = 1.0
# CPU seconds of one `_loop()` on a quiet machine of this kind (measured 2026-12-01).
REFERENCE_CPU_SECONDS = 0.045
MAX_SCALE = 6.0


def _loop() -> int:
    """Pure-Python integer arithmetic: CPU-bound, no memory or I/O effects."""
    total = 0
    for i in range(400_000):
        total += (i * i) % 7
    return total


def _busy(seconds: float) -> tuple[float, float, float]:
    """(wall, cpu, cpu per loop) of a process busy for `seconds` of wall time."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    loops = 0
    while time.perf_counter() - wall0 < seconds:
        _loop()
        loops += 1
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return wall, cpu, cpu / max(loops, 1)


def measure(seconds: float = CALIBRATION_SECONDS) -> tuple[float, float]:
    """(contention, speed) factors now, each >= 1."""
    with multiprocessing.get_context("fork").Pool(2) as pool:
        runs = pool.map(_busy, [seconds, seconds])
    contention = max(wall / max(cpu, 1e-6) for wall, cpu, _ in runs)
    speed = min(per_loop for _, _, per_loop in runs) / REFERENCE_CPU_SECONDS
    return max(1.0, contention), max(1.0, speed)


def current_scale() -> float:
    """How much longer than on a quiet machine a boot takes now (1.0 .. MAX_SCALE)."""
    forced = os.environ.get("TESTBOX_E2E_TIME_SCALE")
    if forced:
        return float(forced)
    contention, speed = measure()
    return min(MAX_SCALE, contention * speed)


@functools.cache
def scale() -> float:
    """current_scale() measured once per session (at its first e2e test)."""
    return current_scale()


def scaled(seconds: float, factor: float | None = None) -> float:
    return seconds * (scale() if factor is None else factor)
