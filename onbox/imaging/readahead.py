"""Reading ahead, on threads of their own, the chunks a restore is certain to need.

Why: a restore worker reads its chunk from the share, then decompresses, hashes and writes it.
While it waits for the read its share of the CPU idles, and more workers only add contention
for the CPUs (4 → 6 → 8 workers: no gain). Reads issued ahead by I/O-only threads keep several
requests in flight on the share while the workers compute (over NFS, several files' RPCs in
flight instead of one). Measured on a cold store (1 GiB, 2 CPUs, ext4 on a direct-I/O loop
device as in benchmarks/_imaging_cold.py; interleaved runs): median 1.25 s without, 1.16 s with
8 chunks read ahead (6 runs each; 16 ahead: 1.17 s). That machine's one virtual disk carries
both the share and the target; over NFS, where each read also waits for its round trips, it
was not measured.

Certain to need: a chunk with a use that falls in a hole of the target (onbox.imaging.targetmap).
A hole reads as zeros, never as a stored chunk, so that chunk will be fetched. A chunk whose
every use falls where the target holds data may already be there (the worker hashes the
target's bytes first) and is not read ahead: a restore onto an unchanged disk still reads
nothing from the store, and every chunk is still read at most once.

Every read goes through the same `fetch` (the store's `find_chunk`), so errors are the same
ones, raised where the worker takes the chunk. At most `depth` chunks are held read ahead and not
yet taken, so the memory this costs is bounded by `depth` compressed chunks.
"""

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

DEPTH = 8  # chunks read ahead (and held) at most: 16 measured no better


class ReadAhead:
    """`wanted[i]`: (chunk id, length) to read ahead for work item i, or None."""

    def __init__(
        self,
        fetch: Callable[[str, int], bytes],
        wanted: Sequence[tuple[str, int] | None],
        depth: int = DEPTH,
    ) -> None:
        self._fetch = fetch
        self._wanted = wanted
        self._depth = depth
        self._next = 0
        self._pending: dict[str, Future[bytes]] = {}
        self._pool = ThreadPoolExecutor(max(1, depth), thread_name_prefix="readahead")

    def advance(self, position: int) -> None:
        """Called before work item `position` is handed out: read ahead from it on. Items
        before it are never read ahead (a worker may be reading them itself)."""
        self._next = max(self._next, position)
        while (
            self._next < len(self._wanted)
            and self._next <= position + self._depth
            and len(self._pending) < self._depth
        ):
            wanted = self._wanted[self._next]
            if wanted is not None:
                cid, length = wanted
                self._pending[cid] = self._pool.submit(self._fetch, cid, length)
            self._next += 1

    def take(self, cid: str, length: int) -> bytes:
        """The chunk's stored bytes: read ahead if it was, else read now."""
        future = self._pending.pop(cid, None)
        return future.result() if future is not None else self._fetch(cid, length)

    def close(self) -> None:
        """Stop reading ahead; running reads are waited for, so nothing reads after this."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()

    def __enter__(self) -> "ReadAhead":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
