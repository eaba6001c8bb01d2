"""Ordered parallel map with a bounded window: the engine's only concurrency primitive.

At most `window` items are in flight (submitted but not yet consumed), so memory stays at
window x chunk size however large the disk, and results come back in input order so manifests
are built sequentially. The input iterator is consumed on the caller's thread (disk reads are
sequential); `fn` runs on the pool's threads.
"""

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def bounded_map(
    pool: ThreadPoolExecutor, fn: Callable[[T], R], items: Iterable[T], window: int
) -> Iterator[R]:
    pending: deque[Future[R]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        # On error or early exit: don't start queued work, wait for running work to end.
        for future in pending:
            future.cancel()
        for future in pending:
            if not future.cancelled():
                future.exception()


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def restore_workers() -> int:
    """Twice the CPUs: a restore worker spends part of each chunk waiting on the share (a cold
    store, the network) and on its O_DIRECT write, and the extra threads keep the CPUs busy
    meanwhile. Measured on a cold store (benchmarks/_imaging_cold.py, 1 GiB, 2 CPUs, best of
    3): 2 workers 1.01 s, 3: 0.85 s, 4: 0.89 s, 6: 0.83 s, 8: 0.85 s."""
    return 2 * default_workers()
