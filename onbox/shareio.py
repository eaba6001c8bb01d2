"""The one door to a share: every read and write of both programs on a share goes through here.

Every test box writes to the backup share as root, so whatever a share holds is hostile input
(threat model: docs/threat-model.md). Rather than trusting each call site to remember, a `Share`
only offers operations that are safe by construction:

* paths are relative, component by component (no `..`, no absolute path, no empty part), and are
  walked with `openat(O_NOFOLLOW | O_DIRECTORY)` from the share's root descriptor, so no symbolic
  link anywhere below the root is ever followed (the root itself is the operator's mount point);
* files are opened `O_NOFOLLOW | O_NONBLOCK` and checked with `fstat` to be regular files, so a
  FIFO cannot hang a run and a device cannot be read or written;
* every read is bounded (`limit`): a record that is larger is an error, never a MemoryError;
* every write is atomic (temp file in the same directory, fsync, rename, fsync of the directory);
  temp names are short (`.<first 40 chars>.<random>.tmp`) whatever the file's name, and
  `sweep_temp` removes the ones a killed run left behind;
* removal never goes through a link: `remove` unlinks regular files only, `remove_tree` is the
  descriptor-based `shutil.rmtree` that unlinks links instead of following them.

Anything that is not what it should be raises `ShareAccessError` (an `OnboxError`) naming the
path and the problem, so callers can turn it into a notice for that one box.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, NamedTuple

from onbox.errors import OnboxError

# Bounds for the records a share holds. A record above its bound is damage, not data.
RECORD_LIMIT = 1 << 20  # request.json, results, commit records, leases, power.json, ...
MANIFEST_LIMIT = 64 << 20  # one id per chunk: ~70 bytes x 1M chunks (4 TiB disk)
TEXT_LIMIT = 1 << 20  # disk-devices.lst, PXE configs

TEMP_SUFFIX = ".tmp"
_TEMP_STEM = 40  # characters of the target name kept in a temp name (NAME_MAX is 255)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC

EntryKind = Literal["file", "dir", "symlink", "other"]
Kind = EntryKind | Literal["missing"]


class ShareAccessError(OnboxError):
    """A share path is not what it must be (a link, a FIFO, too large, malformed) or I/O failed."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class ShareMissing(ShareAccessError):
    """The path does not exist (callers often treat this as 'no record yet')."""


class Entry(NamedTuple):
    """One directory entry, typed without following links.

    A named tuple rather than a frozen dataclass: one is made per entry of every directory a
    run lists (tens of thousands), and a tuple is built in half the time.
    """

    name: str
    kind: Kind
    size: int
    mtime: float


def kind_of(mode: int) -> EntryKind:
    """What an lstat mode is, in the words every share listing uses."""
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


_KIND_WORDS = {
    "symlink": "is a symbolic link (never followed)",
    "dir": "is a directory where a file belongs",
    "other": "is not a regular file (FIFO, socket or device)",
    "file": "is a file where a directory belongs",
}

KIND_WORDS = _KIND_WORDS  # for callers that check a kind themselves and say why they refuse


def split(rel: str | Path) -> list[str]:
    """The components of a share-relative path; anything that could leave the share is refused."""
    text = rel if isinstance(rel, str) else str(rel)
    if "/" not in text and text not in ("", ".", "..") and "\0" not in text:
        return [text]  # one plain name: by far the most common (a record in its directory)
    if text.startswith("/") or "\0" in text:
        raise ShareAccessError(text, "not a path inside the share")
    parts = text.split("/")
    # `in` on the list is one C loop: the clean case (`<id>/commit.json`) builds no new list.
    if "" in parts or "." in parts:
        parts = [p for p in parts if p not in ("", ".")]
    if ".." in parts:
        raise ShareAccessError(text, "'..' is not allowed in a share path")
    return parts


class Share:
    """A directory tree (a share, or a directory inside one) reached only through descriptors."""

    def __init__(self, root: str | Path, *, _fd: int | None = None) -> None:
        # The root is kept as text (what messages show); a Path is built only when asked for:
        # a sub-Share per box directory and per results directory made pathlib's parsing a
        # visible part of observing a lab.
        self._where = str(root) if _fd is not None else str(Path(root))
        self._root: Path | None = None
        if _fd is None:
            try:
                _fd = os.open(self._where, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except FileNotFoundError:
                raise ShareMissing(self._where, "does not exist") from None
            except OSError as exc:
                raise ShareAccessError(self._where, _os_problem(exc)) from None
        self._fd = _fd
        # Closed by close() / the with block, else when the Share is freed (__del__). Not a
        # weakref.finalize: a Share is made per box directory and per results directory of
        # every box, and registering a finalizer for each was a visible part of a listing.
        self._open = True

    @property
    def root(self) -> Path:
        if self._root is None:
            self._root = Path(self._where)
        return self._root

    def close(self) -> None:
        if self._open:
            self._open = False
            os.close(self._fd)

    def __del__(self) -> None:
        if getattr(self, "_open", False):  # (a constructor that raised set no descriptor)
            self._open = False
            with contextlib.suppress(OSError):
                os.close(self._fd)

    def __enter__(self) -> Share:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def path(self, rel: str | Path = "") -> str:
        """The path as a user reads it in a message."""
        return self._join(split(rel))

    def _join(self, parts: list[str]) -> str:
        if not parts:
            return self._where
        if self._where == ".":
            return "/".join(parts)  # as pathlib writes it
        sep = "" if self._where.endswith("/") else "/"
        return self._where + sep + "/".join(parts)

    # -- walking ---------------------------------------------------------------------------

    def _open_dir(self, parts: list[str], create: bool = False) -> int:
        """A new descriptor of the directory `parts` (caller closes), no link followed.

        The walk starts at our own descriptor without a dup (only descriptors it opened itself
        are closed on the way): a dup and a close per access were a measurable part of reading
        thousands of records.
        """
        if not parts:
            return os.dup(self._fd)
        fd = self._fd
        try:
            for i, part in enumerate(parts):
                try:
                    nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    try:
                        os.mkdir(part, 0o755, dir_fd=fd)
                    except FileExistsError:
                        pass
                    except OSError as exc:  # a full or read-only share: one line, no traceback
                        where = self.path("/".join(parts[: i + 1]))
                        raise ShareAccessError(where, _os_problem(exc)) from None
                    nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    raise self._wrong_kind(fd, part, "/".join(parts[: i + 1]), "dir", exc) from None
                if fd != self._fd:
                    os.close(fd)
                fd = nfd
        except FileNotFoundError:
            if fd != self._fd:
                os.close(fd)
            raise ShareMissing(self.path("/".join(parts)), "does not exist") from None
        except BaseException:
            if fd != self._fd:
                os.close(fd)
            raise
        return fd

    def _wrong_kind(self, dir_fd: int, name: str, rel: str, want: Kind, exc: OSError) -> Exception:
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            return ShareAccessError(self.path(rel), _os_problem(exc))
        kind = kind_of(st.st_mode)
        if kind == want:
            return ShareAccessError(self.path(rel), _os_problem(exc))
        return ShareAccessError(self.path(rel), _KIND_WORDS[kind])

    @contextlib.contextmanager
    def _parent(self, rel: str | Path, create: bool = False) -> Iterator[tuple[int, str, str]]:
        parts = split(rel)
        if not parts:
            raise ShareAccessError(self.path(), "a file name is needed")
        if len(parts) == 1:
            # A name directly in this directory: our own descriptor serves (no dup, no close);
            # observe reads several files per box directory for thousands of boxes.
            yield self._fd, parts[0], parts[0]
            return
        fd = self._open_dir(parts[:-1], create=create)
        try:
            yield fd, parts[-1], "/".join(parts)
        finally:
            os.close(fd)

    def sub(self, rel: str | Path, create: bool = False) -> Share:
        """The directory `rel` as a Share of its own (reached without following a link)."""
        parts = split(rel)
        fd = self._open_dir(parts, create=create)
        return Share(self._join(parts), _fd=fd)

    # -- looking ---------------------------------------------------------------------------

    def lstat(self, rel: str | Path) -> os.stat_result | None:
        """The entry's own status (a link is a link), or None when it does not exist."""
        try:
            with self._parent(rel) as (fd, name, _):
                return os.stat(name, dir_fd=fd, follow_symlinks=False)
        except ShareMissing:
            return None
        except FileNotFoundError:
            return None

    def kind(self, rel: str | Path) -> Kind:
        if not split(rel):
            return "dir"
        st = self.lstat(rel)
        return "missing" if st is None else kind_of(st.st_mode)

    def is_file(self, rel: str | Path) -> bool:
        return self.kind(rel) == "file"

    def is_dir(self, rel: str | Path) -> bool:
        return self.kind(rel) == "dir"

    def entries(self, rel: str | Path = "", *, stat: bool = True) -> list[Entry]:
        """The entries of directory `rel`, sorted by name, each typed without following links.

        With stat=False the kind comes from the directory listing itself (d_type; one lstat
        only where the file system does not say) and size and mtime are 0: a box directory is
        listed for every box in every run, and a stat per entry is most of that cost.
        """
        parts = split(rel)
        # This directory itself is listed from our own descriptor: os.scandir works on a
        # duplicate of it and rewinds it when done (a dup of our own here was two more
        # system calls per listing, for every box directory).
        fd = self._open_dir(parts) if parts else self._fd
        try:
            with os.scandir(fd) as it:
                if not stat:
                    out = [Entry(e.name, _dirent_kind(e), 0, 0.0) for e in it]
                else:
                    out = []
                    for e in it:
                        try:
                            st = e.stat(follow_symlinks=False)
                        except FileNotFoundError:
                            continue  # removed while we listed
                        out.append(Entry(e.name, kind_of(st.st_mode), st.st_size, st.st_mtime))
        except OSError as exc:
            raise ShareAccessError(self.path(rel), _os_problem(exc)) from None
        finally:
            if fd != self._fd:
                os.close(fd)
        out.sort()  # by name: names in one directory are distinct, so the rest never counts
        return out

    def names(self, rel: str | Path = "") -> list[str]:
        return [e.name for e in self.entries(rel)]

    # -- reading ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def open_regular(self, rel: str | Path) -> Iterator[int]:
        """A read descriptor of the regular file `rel` (never a link, FIFO or device)."""
        fd, _ = self._open_regular(split(rel))
        try:
            yield fd
        finally:
            os.close(fd)

    def _open_regular(self, parts: list[str]) -> tuple[int, int]:
        """(descriptor, size) of the regular file `parts`: the walk and the checks of every read.

        Written without context managers (reads are the hot path of observing a lab: two
        generator-based managers per record were a visible part of it). The directories on
        the way are opened O_NOFOLLOW | O_DIRECTORY; the file O_NOFOLLOW | O_NONBLOCK, and
        the fstat of the open descriptor is what proves it regular (a listing's d_type only
        says what the name was when listed).
        """
        if not parts:
            raise ShareAccessError(self.path(), "a file name is needed")
        name = parts[-1]
        dfd = self._fd if len(parts) == 1 else self._open_dir(parts[:-1])
        try:
            try:
                fd = os.open(name, _READ_FLAGS, dir_fd=dfd)
            except FileNotFoundError:
                raise ShareMissing(self._join(parts), "does not exist") from None
            except OSError as exc:
                raise self._wrong_kind(dfd, name, "/".join(parts), "file", exc) from None
        finally:
            if dfd != self._fd:
                os.close(dfd)
        try:
            st = os.fstat(fd)
        except OSError as exc:
            os.close(fd)
            raise ShareAccessError(self._join(parts), _os_problem(exc)) from None
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise ShareAccessError(self._join(parts), _KIND_WORDS[kind_of(st.st_mode)])
        # O_NONBLOCK only mattered for opening (a FIFO); reads of a regular file never
        # block on it, so no fcntl is spent undoing it.
        return fd, st.st_size

    def read_bytes(self, rel: str | Path, limit: int = RECORD_LIMIT) -> bytes:
        """The whole file, at most `limit` bytes (a larger file is an error)."""
        parts = split(rel)
        fd, size = self._open_regular(parts)
        try:
            # The first read asks for the size fstat gave, plus one byte (so a file larger
            # than it said, or than `limit`, shows at once) instead of a 1 MiB buffer per
            # record. Getting exactly `size` (within the limit) bytes means EOF as of the
            # fstat: the file is not read a second time just to see the end.
            piece = os.read(fd, min(size, limit) + 1)
            if len(piece) == size <= limit:
                return piece
            chunks = [piece]
            total = len(piece)
            while piece:
                if total > limit:
                    raise ShareAccessError(self._join(parts), f"larger than {limit} bytes")
                piece = os.read(fd, min(1 << 20, limit + 1 - total))
                chunks.append(piece)
                total += len(piece)
            return b"".join(chunks)
        except OSError as exc:
            raise ShareAccessError(self._join(parts), _os_problem(exc)) from None
        finally:
            os.close(fd)

    def read_text(self, rel: str | Path, limit: int = TEXT_LIMIT) -> str:
        data = self.read_bytes(rel, limit)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise ShareAccessError(self.path(rel), "is not UTF-8 text") from None

    def read_json(self, rel: str | Path, limit: int = RECORD_LIMIT) -> object:
        """Parsed JSON of any shape (callers validate it): never a traceback for bad input."""
        data = self.read_bytes(rel, limit)
        try:
            return json.loads(data)
        except (RecursionError, ValueError):
            # The message (and the path in it) is made only for a bad record: parse_json
            # says why in one line.
            return parse_json(data, self.path(rel))

    def try_read_bytes(self, rel: str | Path, limit: int = RECORD_LIMIT) -> bytes | None:
        """Like read_bytes, but None when the file does not exist."""
        try:
            return self.read_bytes(rel, limit)
        except ShareMissing:
            return None

    def try_read_text(self, rel: str | Path, limit: int = TEXT_LIMIT) -> str | None:
        try:
            return self.read_text(rel, limit)
        except ShareMissing:
            return None

    # -- writing ---------------------------------------------------------------------------

    def write_atomic(
        self, rel: str | Path, data: bytes | str, mode: int = 0o644, create_dirs: bool = False
    ) -> None:
        """Replace `rel` with `data`: readers see the old or the new content, never a mix."""
        raw = data.encode("utf-8") if isinstance(data, str) else data
        with self._parent(rel, create=create_dirs) as (dfd, name, full):
            tmp = temp_name(name)
            try:
                _write_new_file(dfd, tmp, raw, mode, sync=True)
                st = _lstat_or_none(name, dfd)
                if st is not None and stat.S_ISDIR(st.st_mode):
                    raise ShareAccessError(self.path(full), _KIND_WORDS["dir"])
                os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
                os.fsync(dfd)
            except BaseException as exc:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=dfd)
                if isinstance(exc, OSError):
                    raise ShareAccessError(self.path(full), _os_problem(exc)) from None
                raise

    def create_exclusive(self, rel: str | Path, data: bytes | str, mode: int = 0o644) -> bool:
        """Create `rel` with its full content, only if nothing is there (False if something is).

        The content is written to a temp file first and hard-linked into place, so a full or
        read-only share never leaves an empty file under the name (a 0-byte lock would block
        every later run).
        """
        raw = data.encode("utf-8") if isinstance(data, str) else data
        with self._parent(rel) as (dfd, name, full):
            tmp = temp_name(name)
            try:
                _write_new_file(dfd, tmp, raw, mode, sync=True)
                try:
                    os.link(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd, follow_symlinks=False)
                except FileExistsError:
                    return False
                os.fsync(dfd)
                return True
            except OSError as exc:
                raise ShareAccessError(self.path(full), _os_problem(exc)) from None
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=dfd)

    def write_temp(self, rel: str | Path, data: bytes, mode: int = 0o644) -> str:
        """First half of a deferred atomic write: `data` in a temp file beside `rel` (no fsync).

        Returns the temp file's share-relative path for `finish_temp`. The name `rel` does not
        exist with partial bytes at any time (the chunk store's writers batch their fsyncs).
        """
        with self._parent(rel, create=True) as (dfd, name, full):
            tmp = temp_name(name)
            try:
                _write_new_file(dfd, tmp, data, mode, sync=False)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=dfd)
                raise ShareAccessError(self.path(full), _os_problem(exc)) from None
            parent = full.rpartition("/")[0]
            return f"{parent}/{tmp}" if parent else tmp

    def finish_temp(self, tmp: str, rel: str | Path, *, replace: bool = True) -> bool:
        """Second half: fsync the temp file, rename it to `rel` (same directory).

        The directory itself is not fsynced (call `sync_dir` once for many files). With
        replace=False an existing `rel` is kept and the temp file dropped (returns False).
        """
        with self._parent(rel) as (dfd, name, full):
            tname = split(tmp)[-1]
            try:
                try:
                    fd = os.open(tname, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                    if replace:
                        os.rename(tname, name, src_dir_fd=dfd, dst_dir_fd=dfd)
                        return True
                    try:
                        os.link(tname, name, src_dir_fd=dfd, dst_dir_fd=dfd, follow_symlinks=False)
                    except FileExistsError:
                        return False
                    return True
                finally:
                    with contextlib.suppress(OSError):
                        os.unlink(tname, dir_fd=dfd)
            except OSError as exc:
                raise ShareAccessError(self.path(full), _os_problem(exc)) from None

    def sync_dir(self, rel: str | Path = "") -> None:
        """fsync the directory `rel` (makes renames into it durable)."""
        fd = self._open_dir(split(rel))
        try:
            os.fsync(fd)
        except OSError as exc:
            raise ShareAccessError(self.path(rel), _os_problem(exc)) from None
        finally:
            os.close(fd)

    def append(
        self, rel: str | Path, data: bytes | str, mode: int = 0o644, *, sync: bool = False
    ) -> None:
        """Append with one write on an O_APPEND descriptor (lines from many writers never mix).

        With sync=True the data is on stable storage when this returns (fdatasync), and a
        newly created file's directory entry too.
        """
        raw = data.encode("utf-8") if isinstance(data, str) else data
        with self._parent(rel) as (dfd, name, full):
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
            try:
                fd = os.open(name, flags | os.O_CLOEXEC, mode, dir_fd=dfd)
            except OSError as exc:
                raise self._wrong_kind(dfd, name, full, "file", exc) from None
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    raise ShareAccessError(self.path(full), _KIND_WORDS["other"])
                os.write(fd, raw)
                if sync:
                    os.fdatasync(fd)
                    if st.st_size == 0:  # possibly created just now: make the name durable
                        os.fsync(dfd)
            except OSError as exc:
                raise ShareAccessError(self.path(full), _os_problem(exc)) from None
            finally:
                os.close(fd)

    def mkdir(self, rel: str | Path) -> None:
        """Create directory `rel` and its parents (an existing link in the way is an error)."""
        os.close(self._open_dir(split(rel), create=True))

    def rename(self, src: str | Path, dst: str | Path, *, replace: bool = True) -> bool:
        """Rename inside the share; with replace=False, False when `dst` exists (nothing moved)."""
        with self._parent(src) as (sfd, sname, sfull), self._parent(dst) as (dfd, dname, _):
            try:
                if replace:
                    os.rename(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd)
                else:
                    # link + unlink: rename without replacing (renameat2 is not in os).
                    try:
                        os.link(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd, follow_symlinks=False)
                    except FileExistsError:
                        return False
                    os.unlink(sname, dir_fd=sfd)
                os.fsync(dfd)
                if sfd != dfd:
                    os.fsync(sfd)
            except FileNotFoundError:
                raise ShareMissing(self.path(sfull), "does not exist") from None
            except OSError as exc:
                raise ShareAccessError(self.path(sfull), _os_problem(exc)) from None
            return True

    def rename_dir(self, src: str | Path, dst: str | Path) -> None:
        """Rename a directory (or any entry) inside the share; fails if `dst` exists."""
        with self._parent(src) as (sfd, sname, sfull), self._parent(dst) as (dfd, dname, _):
            if _lstat_or_none(dname, dfd) is not None:
                raise ShareAccessError(self.path(dst), "already exists")
            try:
                os.rename(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd)
                os.fsync(dfd)
            except OSError as exc:
                raise ShareAccessError(self.path(sfull), _os_problem(exc)) from None

    # -- removing --------------------------------------------------------------------------

    def remove(
        self, rel: str | Path, *, allow_link: bool = False, allow_special: bool = False
    ) -> bool:
        """Unlink a regular file (or, with allow_link, a link itself; with allow_special, a
        FIFO, socket or device node itself: unlinking never opens it); False when already gone."""
        with self._parent(rel) as (dfd, name, full):
            st = _lstat_or_none(name, dfd)
            if st is None:
                return False
            kind = kind_of(st.st_mode)
            allowed = kind == "file" or (allow_link and kind == "symlink")
            if not allowed and not (allow_special and kind == "other"):
                raise ShareAccessError(self.path(full), _KIND_WORDS[kind] + "; not removed")
            try:
                os.unlink(name, dir_fd=dfd)
                os.fsync(dfd)
            except FileNotFoundError:
                return False
            except OSError as exc:
                raise ShareAccessError(self.path(full), _os_problem(exc)) from None
            return True

    def remove_tree(self, rel: str | Path) -> bool:
        """Remove a directory and everything in it, never through a link; False when gone."""
        with self._parent(rel) as (dfd, name, full):
            st = _lstat_or_none(name, dfd)
            if st is None:
                return False
            if not stat.S_ISDIR(st.st_mode):
                raise ShareAccessError(
                    self.path(full), _KIND_WORDS[kind_of(st.st_mode)] + "; not removed"
                )
            errors: list[str] = []

            def onerror(*args: object) -> None:
                exc = args[-1]
                if isinstance(exc, tuple):
                    exc = exc[1]
                if not isinstance(exc, FileNotFoundError):
                    errors.append(str(exc))

            # shutil.rmtree with dir_fd is the descriptor-based variant: links are unlinked,
            # never followed (shutil._rmtree_safe_fd).
            shutil.rmtree(name, dir_fd=dfd, onerror=onerror)
            if errors:
                raise ShareAccessError(self.path(full), f"not fully removed: {errors[0]}")
            os.fsync(dfd)
            return True

    def sweep_temp(self, rel: str | Path = "", older_than: float = 0.0, now: float = 0.0) -> int:
        """Remove temp files (`.*.tmp`, regular files only) that a killed writer left behind."""
        removed = 0
        for e in self.entries(rel):
            if e.kind == "file" and e.name.startswith(".") and e.name.endswith(TEMP_SUFFIX):
                if older_than and now - e.mtime < older_than:
                    continue
                inner = f"{rel}/{e.name}" if str(rel) else e.name
                with contextlib.suppress(ShareAccessError):
                    removed += self.remove(inner)
        return removed


def _write_new_file(dir_fd: int, name: str, data: bytes, mode: int, *, sync: bool) -> None:
    """Create `name` (it must not exist: O_EXCL, no link followed) holding all of `data`."""
    fd = os.open(
        name,
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
        mode,
        dir_fd=dir_fd,
    )
    try:
        os.fchmod(fd, mode)  # whatever the umask
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(name: str) -> str:
    """A short, unique temp name beside `name` (NAME_MAX holds for any target name)."""
    return f".{name[:_TEMP_STEM]}.{secrets.token_hex(6)}{TEMP_SUFFIX}"


def parse_json(data: bytes, where: str) -> object:
    """JSON of any shape from untrusted bytes; every failure is one ShareAccessError line."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ShareAccessError(where, "JSON nested too deeply") from None
    except UnicodeDecodeError:
        raise ShareAccessError(where, "is not UTF-8 JSON") from None
    except ValueError as exc:
        raise ShareAccessError(where, f"is not valid JSON ({exc})") from None


def _dirent_kind(entry: os.DirEntry[str]) -> Kind:
    """The entry's kind from d_type (no stat unless the file system leaves it unknown).

    Files first (most entries are): without following, is_file and is_dir are true only for
    the entry itself, never for a link to one, so the order does not change the answer.
    """
    if entry.is_file(follow_symlinks=False):
        return "file"
    if entry.is_dir(follow_symlinks=False):
        return "dir"
    if entry.is_symlink():
        return "symlink"
    return "other"


def _lstat_or_none(name: str, dir_fd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _os_problem(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return _KIND_WORDS["symlink"]
    if exc.errno == errno.ENOSPC:
        return "no space left on the share"
    if exc.errno == errno.EROFS:
        return "the share is read-only"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return exc.strerror or str(exc)
