"""Writing a restore target past the page cache (O_DIRECT where the target takes it), behind
the caller: the restore's workers hand their bytes over and go on with the next chunk.

Why past the page cache: a restore writes each byte once and never reads it back, so copying
it into the page cache first is pure cost. Measured on this project's machine (ext4 on a virtio
disk, 640 MB of 4 MiB chunks): buffered `pwrite` took 1.1 s of CPU plus 0.3 s of fsync, more
than decompressing (0.8 s) and hashing (0.4 s) the same bytes; with O_DIRECT the writes took
0.04 s of CPU and ran at the disk's speed (docs/images.md, "Restore"). `dd oflag=direct` is
the classic form of the same choice.

Why behind the caller: an O_DIRECT write returns only when the disk has the bytes. Timed per
call in a cold-store restore (1 GiB, 4 workers, 2 CPUs, share and target on one disk), the
workers spent 1.8 thread-seconds of a 1.0 s restore waiting in `pwrite`, two of the four at any
time, while a CPU idled. So a worker leases one of the writer's page-aligned buffers (an
anonymous mmap each), decompresses its chunk straight into it, and hands it back with the
ranges to write (`write_leased`); one writer thread writes them and frees the buffer. At most
`behind + fillers` buffers exist (`fillers`: the threads that may hold a lease at once), so the
memory is bounded and a worker waits only while every buffer is in flight. `write()` does the
same for bytes the caller already has (zeros), copying them into a buffer. One thread keeps the
writes in the order they were asked for; the restore never writes one range twice, so the
order of writes from different workers never mattered. Filling the buffer in place instead of
copying a decompressed chunk into it cut a whole-run cold restore's CPU from 1.86 to 1.70 s
(640 MB not copied, no fresh 4 MiB output per chunk; docs/images.md, "Restore").

O_DIRECT needs the buffer's address, the offset and the length aligned to the device's logical
block. ALIGN = 4096 covers 512- and 4096-byte devices. What cannot go direct takes the buffered
path, with writeback started at once (FADV_DONTNEED): a write that is not aligned (the disk's
last partial page, a used range of an odd size) goes through the same queue, and a target that
refuses O_DIRECT at open (tmpfs before Linux 6.6, some FUSE file systems) is written buffered
on the caller's thread, from the same leased buffers (the page cache makes those writes quick).
A target that refuses it at its first write (EINVAL) is written buffered from then on. Either
way the bytes on the target are the same. Once a write failed (any error of the writer thread,
as an OSError), the writer stays failed: every later `lease()` and `write()` raises it, and so
does `close()`, which waits for every queued write and fsyncs both descriptors. Nothing that
failed in the thread is lost.
"""

import errno
import mmap
import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ALIGN = 4096
BEHIND = 4  # buffers in flight; 2 or 8, or two writer threads, measured no better


Pieces = list[tuple[int, int, int]]  # (start, stop) in a buffer, and the target offset


class TargetWriter:
    """Positional writes onto a restore target; `fd` is the caller's O_RDWR descriptor (used for
    reads, buffered writes and fsync), a second O_DIRECT one is opened here when possible.
    Writes must not overlap one another (a restore writes every range once)."""

    def __init__(
        self, path: Path, fd: int, buffer_size: int, behind: int = BEHIND, fillers: int = 0
    ) -> None:
        self.fd = fd
        self._size = max(ALIGN, -(-buffer_size // ALIGN) * ALIGN)
        self._lock = threading.Lock()
        self.direct_bytes = 0
        self.buffered_bytes = 0
        self._error: OSError | None = None
        try:
            self._direct: int | None = os.open(path, os.O_WRONLY | os.O_DIRECT)
        except OSError:
            self._direct = None
        self._direct_ok = self._direct is not None
        self._free: queue.Queue[mmap.mmap] = queue.Queue()
        self._made = 0  # buffers made so far, at most `_most`
        self._most = max(1, behind) + max(0, fillers)
        self._thread: ThreadPoolExecutor | None = None
        if self._direct is not None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="target-writer")

    @property
    def direct(self) -> bool:
        """Whether writes still go past the page cache."""
        return self._direct_ok

    def lease(self) -> mmap.mmap:
        """A free aligned buffer (the size given at creation, rounded up to ALIGN) for the
        caller to fill, then pass to
        `write_leased` (or `give_back`); waits while every buffer is in flight."""
        self._raise_queued_error()
        try:
            return self._free.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._made < self._most:
                self._made += 1
                return mmap.mmap(-1, self._size)
        return self._free.get()

    def give_back(self, buf: mmap.mmap) -> None:
        """A leased buffer not written from (its chunk was bad)."""
        self._free.put(buf)

    def write_leased(self, buf: mmap.mmap, pieces: Pieces) -> None:
        """Write buf[start:stop] at `offset` for each (start, stop, offset), behind the caller
        where writes are queued; the buffer is the writer's again after the last of them."""
        if self._thread is not None:
            self._thread.submit(self._queued, buf, pieces)
            return
        try:
            with memoryview(buf) as whole:
                for start, stop, offset in pieces:
                    with whole[start:stop] as piece:
                        self._write_now(piece, offset)
        finally:
            self._free.put(buf)

    def write(self, data: bytes | memoryview, offset: int) -> None:
        """Queue `data` for writing at `offset` (on a target without O_DIRECT: write it now)."""
        self._raise_queued_error()
        view = memoryview(data)
        if self._thread is None:
            self._write_now(view, offset)
            return
        # Every queued write is a copy in one of the buffers: what waits in the queue is
        # bounded by them, however many small ranges a skip image has.
        for start in range(0, len(view), self._size):
            piece = view[start : start + self._size]
            buf = self.lease()
            with memoryview(buf) as aligned:
                aligned[: len(piece)] = piece
            self.write_leased(buf, [(0, len(piece), offset + start)])

    def _write_now(self, view: memoryview, offset: int) -> None:
        """A buffered write on the caller's thread (no O_DIRECT); a failure is kept."""
        try:
            self._write_buffered(view, offset)
        except OSError as exc:
            self._error = OSError(exc.errno, exc.strerror)
            raise

    def close(self) -> None:
        """Wait for every queued write, fsync and close the O_DIRECT descriptor (the caller
        fsyncs and closes `fd`); the error of a queued write, if any, is raised here."""
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None
        # The buffers are unmapped when the last view of them goes (not closed here: a view
        # an error still holds would make close() raise BufferError instead of the error).
        self._free = queue.Queue()
        if self._direct is not None:
            try:
                os.fsync(self._direct)
            finally:
                os.close(self._direct)
                self._direct = None
                self._direct_ok = False
        self._raise_queued_error()

    def _raise_queued_error(self) -> None:
        """Once a write failed, every later write and close fails with its error."""
        error = self._error
        if error is not None:
            raise OSError(error.errno, error.strerror)

    # The writer thread's part. After an error it writes nothing more: the restore fails.

    def _queued(self, buf: mmap.mmap, pieces: Pieces) -> None:
        aligned = memoryview(buf)
        try:
            for start, stop, offset in pieces:
                if self._error is not None:
                    break
                with aligned[start:stop] as piece:
                    done = 0
                    # The buffer is page-aligned: so is a piece that starts on a page.
                    if not (offset % ALIGN or start % ALIGN or len(piece) % ALIGN):
                        done = self._write_direct(piece, offset)
                    if done < len(piece):
                        self._write_buffered(piece[done:], offset + done)
        except OSError as exc:
            # A copy without the traceback, whose frames would hold views of `buf`.
            self._error = OSError(exc.errno, exc.strerror)
        except Exception as exc:  # nothing may be lost in the thread: the restore must fail
            self._error = OSError(errno.EIO, f"target writer failed: {type(exc).__name__}: {exc}")
        finally:
            aligned.release()
            self._free.put(buf)

    def _write_direct(self, view: memoryview, offset: int) -> int:
        """Bytes of the aligned `view` written with O_DIRECT from the start (0 if refused)."""
        if not self._direct_ok or self._direct is None:
            return 0
        done = 0
        try:
            while done < len(view):
                step = os.pwrite(self._direct, view[done:], offset + done)
                done += max(step, 0)
                if step <= 0 or step % ALIGN:
                    break  # a short, unaligned write cannot be continued directly
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            self._direct_ok = False  # the file system took the open but not the write
        finally:
            with self._lock:
                self.direct_bytes += done
        return done

    def _write_buffered(self, view: memoryview, offset: int) -> None:
        _pwrite_all(self.fd, view, offset)
        # Start writeback now (Linux: FADV_DONTNEED on dirty pages queues them for writing),
        # so the disk works while later chunks are decompressed and fsync has little left.
        os.posix_fadvise(self.fd, offset, len(view), os.POSIX_FADV_DONTNEED)
        with self._lock:
            self.buffered_bytes += len(view)


def _pwrite_all(fd: int, view: memoryview, offset: int) -> None:
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], offset + done)
