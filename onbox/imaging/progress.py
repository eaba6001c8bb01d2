"""Progress of a long disk operation: bytes done of total, rate and ETA, to any renderer.

The engine reports through a `Progress` callback (anything callable with a `ProgressEvent`).
`Throttle` limits how often it is called; `TerminalProgress` redraws one line on a terminal,
`LogProgress` hands a plain line to a function (the service writes it to its logs).
"""

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TextIO


@dataclass(frozen=True)
class ProgressEvent:
    task: str  # e.g. "backup sda", "restore sda", "verify"
    done: int
    total: int | None  # None when unknown (a legacy gz stream)
    elapsed: float
    finished: bool = False

    @property
    def rate(self) -> float:
        """Bytes per second so far."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        if self.total is None or self.rate <= 0:
            return None
        return max(0.0, (self.total - self.done) / self.rate)


class Progress(Protocol):
    def __call__(self, event: ProgressEvent) -> None: ...


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def human_duration(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def describe(event: ProgressEvent) -> str:
    """`backup sda: 1.2 GiB of 40.0 GiB (3%), 612.0 MB/s, ETA 1m05s`"""
    done = human_bytes(event.done)
    if event.total:
        text = f"{done} of {human_bytes(event.total)} ({100 * event.done // event.total}%)"
    else:
        text = done
    text = f"{event.task}: {text}, {event.rate / 1e6:.1f} MB/s"
    if event.finished:
        return f"{text}, done in {human_duration(event.elapsed)}"
    eta = event.eta
    return f"{text}, ETA {human_duration(eta)}" if eta is not None else text


class Tracker:
    """Counts bytes for one task (thread-safe) and forwards events, at most every `interval` s."""

    def __init__(
        self, task: str, total: int | None, progress: Progress | None, interval: float = 1.0
    ) -> None:
        self.task = task
        self.total = total
        self._progress = progress
        self._interval = interval
        self._start = time.monotonic()
        self._last = float("-inf")
        self._done = 0
        self._lock = threading.Lock()

    def advance(self, n: int) -> None:
        with self._lock:
            self._done += n
            now = time.monotonic()
            if self._progress is None or now - self._last < self._interval:
                return
            self._last = now
            event = ProgressEvent(self.task, self._done, self.total, now - self._start)
        self._progress(event)

    def finish(self) -> None:
        if self._progress is not None:
            elapsed = time.monotonic() - self._start
            self._progress(ProgressEvent(self.task, self._done, self.total, elapsed, True))


class TerminalProgress:
    """One line, redrawn in place (\\r) on a terminal; a newline when a task finishes."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self._stream = stream

    def __call__(self, event: ProgressEvent) -> None:
        end = "\n" if event.finished else ""
        self._stream.write(f"\r\x1b[K{describe(event)}{end}")
        self._stream.flush()


class LogProgress:
    """Plain lines for a log, at most one per `interval` seconds per task, plus the final one."""

    def __init__(self, emit: Callable[[str], None], interval: float = 30.0) -> None:
        self._emit = emit
        self._interval = interval
        self._last: dict[str, float] = {}

    def __call__(self, event: ProgressEvent) -> None:
        last = self._last.get(event.task)
        if not event.finished and last is not None and event.elapsed - last < self._interval:
            return
        self._last[event.task] = event.elapsed
        self._emit(describe(event))
