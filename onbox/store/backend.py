"""The narrow backend interface under the image store: a few generic operations on names.

borgstore's idea: a backend only moves opaque bytes under names (`load`, `store`, `create`,
`append`, `delete`, `delete_tree`, `move`, `stat`, `list`, `open`, `flush`). Everything that
gives the names meaning (chunks, leases, trash, images, the config and verify records) lives
once in `onbox.store.base.ImageStore`, so the filesystem and the memory backend cannot
disagree on semantics (they did, before: on `committed_ids('../etc')` and on missing chunks).

This base class is where the backends meet two rules, once for all of them:

* every name is validated before a backend sees it: '/'-separated parts of `[A-Za-z0-9_.:-]`,
  no `.` or `..` part, no empty part, at most 8 parts of 128 characters;
* every failure a backend raises (`OSError`, `ShareAccessError`) leaves as a `StoreError`
  with one line naming the path; a missing name is `StoreMissing` (a `StoreError`).
"""

from __future__ import annotations

import abc
import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from onbox.errors import OnboxError, StoreError
from onbox.shareio import EntryKind, ShareAccessError, ShareMissing

ItemKind = EntryKind
# A valid name: 1 to 8 '/'-separated parts of 1 to 128 characters of [A-Za-z0-9_.:-], no part
# "." or "..". Two regular expressions over the whole name (one C loop each) instead of a
# split and a match per part: every load, stat and listing checks its name.
MAX_DEPTH = 8
_PART = r"[A-Za-z0-9_.:-]{1,128}"
_NAME = re.compile(f"{_PART}(?:/{_PART}){{0,{MAX_DEPTH - 1}}}")
_DOT_PART = re.compile(r"(?:^|/)\.\.?(?:/|$)")


class StoreMissing(StoreError):
    """The name does not exist in the store."""


@dataclass(frozen=True)
class Item:
    """One name as a backend sees it; `kind` is the entry's own (links are never followed)."""

    name: str  # the last part
    kind: ItemKind
    size: int
    mtime: float


Items = list[Item]  # (the class below has a method named `list`)


def check_name(name: str) -> str:
    """The name if it is a valid store name, else StoreError (the backend never sees it)."""
    if not isinstance(name, str):
        raise StoreError(f"not a store name: {name!r}")
    if _NAME.fullmatch(name) is None or _DOT_PART.search(name) is not None:
        raise StoreError(f"not a valid store name: {name!r}")
    return name


class Backend(abc.ABC):
    """Public methods validate and translate errors; subclasses implement the `_` methods."""

    #: what messages call the store (a path for the filesystem, "memory" otherwise)
    where: str = "store"

    # -- the operations ----------------------------------------------------------------------
    def stat(self, name: str) -> Item | None:
        """The entry under `name` (any kind), None when nothing is there."""
        check_name(name)
        # stat, list and load are what a listing of the lab calls thousands of times: they
        # translate errors with a plain try (the same `_failure` as `_errors`), not through a
        # generator-based context manager.
        try:
            return self._stat(name)
        except (OSError, OnboxError) as exc:
            failure = self._failure(exc, name)
        if isinstance(failure, StoreMissing):
            return None
        raise failure from None

    def list(self, prefix: str = "", *, stat: bool = True) -> Items:
        """Direct children of `prefix` ("" = the top), sorted by name; [] when it is missing.

        stat=False: the kinds only (size and mtime may be 0), for a caller that needs no more;
        a backend may then answer from the listing itself without a stat per entry.
        """
        if prefix:
            check_name(prefix)
        try:
            return self._list(prefix) if stat else self._list_kinds(prefix)
        except (ShareMissing, FileNotFoundError):
            return []
        except (OSError, OnboxError) as exc:
            raise self._failure(exc, prefix) from None

    def load(self, name: str, limit: int) -> bytes:
        """The bytes of a regular file, at most `limit` (a larger one is a StoreError)."""
        check_name(name)
        try:
            return self._load(name, limit)
        except (OSError, OnboxError) as exc:
            raise self._failure(exc, name) from None

    def open(self, name: str) -> BinaryIO:
        """A stream of a (large) regular file; the caller closes it."""
        with self._errors(check_name(name)):
            return self._open(name)

    def store(self, name: str, data: bytes, *, durable: bool = True) -> None:
        """Replace `name` with `data` atomically. durable=False: durable at the next flush()."""
        with self._errors(check_name(name)):
            self._store(name, data, durable)

    def create(self, name: str, data: bytes) -> bool:
        """Create `name` with `data` only if nothing is there; False when something is."""
        with self._errors(check_name(name)):
            return self._create(name, data)

    def append(self, name: str, data: bytes) -> None:
        """Append durably (on stable storage when this returns), creating the file if needed."""
        with self._errors(check_name(name)):
            self._append(name, data)

    def delete(self, name: str) -> bool:
        """Remove a file (a link is removed itself, never followed); False when gone."""
        try:
            with self._errors(check_name(name)):
                return self._delete(name)
        except StoreMissing:
            return False

    def delete_tree(self, prefix: str) -> bool:
        """Remove a directory and everything in it, never through a link; False when gone."""
        try:
            with self._errors(check_name(prefix)):
                return self._delete_tree(prefix)
        except StoreMissing:
            return False

    def move(self, src: str, dst: str, *, replace: bool = False) -> bool:
        """Rename; with replace=False an existing `dst` wins (False, and `src` stays)."""
        check_name(src)
        check_name(dst)
        with self._errors(src):
            return self._move(src, dst, replace)

    def flush(self) -> None:
        """Every store(durable=False) so far is durable, its name included, when this returns."""
        with self._errors(""):
            self._flush()

    def pinned(self, prefix: str) -> contextlib.AbstractContextManager[None]:
        """While inside, this thread may reach names under `prefix` from one handle of it.

        For read-mostly passes over one directory (the store's `scan` reads a box's listing and
        every commit record under it): the filesystem backend opens `prefix` once instead of
        walking to it from the share root for every name. What a name means does not change,
        nor any check on it; a prefix that cannot be opened is simply not pinned (each
        operation then reports it as it would have). Pins nest (innermost wins).
        """
        try:
            check_name(prefix)
        except StoreError:
            # Not pinned: the operations inside refuse the name themselves.
            return contextlib.nullcontext()
        return self._pinned(prefix)

    def sweep_temps(self, prefix: str, older_than: float) -> int:
        """Remove temp files a killed writer left in `prefix` (backends without any: 0)."""
        del prefix, older_than
        return 0

    # -- errors ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _errors(self, name: str) -> Iterator[None]:
        try:
            yield
        except StoreError:
            raise
        except (OSError, OnboxError) as exc:
            raise self._failure(exc, name) from None

    def _failure(self, exc: OSError | OnboxError, name: str) -> StoreError:
        """What a backend's failure on `name` is to the store's callers (the one mapping)."""
        if isinstance(exc, StoreError):
            return exc
        if isinstance(exc, ShareMissing):
            return StoreMissing(exc.message)
        if isinstance(exc, ShareAccessError):
            return StoreError(exc.message)
        if isinstance(exc, FileNotFoundError):
            return StoreMissing(f"{self.where}/{name}: does not exist")
        if isinstance(exc, OSError):
            return StoreError(f"{self.where}/{name}: {exc.strerror or exc}")
        return StoreError(exc.message)

    # -- what a backend implements -------------------------------------------------------------
    @abc.abstractmethod
    def _stat(self, name: str) -> Item | None: ...

    @abc.abstractmethod
    def _list(self, prefix: str) -> Items: ...

    def _list_kinds(self, prefix: str) -> Items:
        return self._list(prefix)  # a backend whose stat is free lists the same either way

    @abc.abstractmethod
    def _load(self, name: str, limit: int) -> bytes: ...

    @abc.abstractmethod
    def _open(self, name: str) -> BinaryIO: ...

    @abc.abstractmethod
    def _store(self, name: str, data: bytes, durable: bool) -> None: ...

    @abc.abstractmethod
    def _create(self, name: str, data: bytes) -> bool: ...

    @abc.abstractmethod
    def _append(self, name: str, data: bytes) -> None: ...

    @abc.abstractmethod
    def _delete(self, name: str) -> bool: ...

    @abc.abstractmethod
    def _delete_tree(self, prefix: str) -> bool: ...

    @abc.abstractmethod
    def _move(self, src: str, dst: str, replace: bool) -> bool: ...

    def _flush(self) -> None:
        return None

    def _pinned(self, prefix: str) -> contextlib.AbstractContextManager[None]:
        del prefix  # a backend without paths to walk has nothing to pin
        return contextlib.nullcontext()
