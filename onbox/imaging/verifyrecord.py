"""Verify records: what `testboxctl verify` (or a restore) found, kept in the store.

A restore reads each chunk once and checks it as it writes (docs/images.md), so a chunk that
is bad is normally found only after the first write. A store that verify has checked knows
better: `store/verify/<writer>.json` says which images were checked, when, with what result,
and which chunks were bad; a restore refuses before writing when its image uses a chunk
recorded bad whose stored file is still the one that was checked (same size and mtime: a
chunk replaced since, e.g. by a backup that found it damaged, is not held against it).

    {"format": 1, "writer": "verify", "updated": "<UTC>",
     "runs": [{"at": "<UTC>", "images": 3, "chunks": 812, "bad": 1}, ...],       last 20
     "images": {"10.0.0.5/20261125T200102Z-3f9a1c": {"at": "<UTC>", "ok": false}, ...},
     "bad": {"<sha256>": {"kind": "corrupt", "at": "<UTC>", "size": 1234,
                          "mtime": 1764000000.5, "detail": "..."}, ...}}

Writers: `verify` (the controller, under the share lock) and `restore-<box ip>` (a box that
found a chunk bad mid-restore; one file per box, so boxes never race on one record). Every
record is read with a size bound and checked; an unreadable one is ignored with a notice
rather than stopping a restore (the restore still checks every chunk's hash as it writes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from onbox.errors import StoreError
from onbox.shareio import MANIFEST_LIMIT
from onbox.store import layout
from onbox.store.backend import Item, StoreMissing
from onbox.store.base import ImageStore
from onbox.store.records import is_chunk_id

FORMAT = 1
MAX_RECORDS = 64  # store/verify/*.json read by a restore (one per box that reported, + verify)
MAX_BAD = 50_000  # bad chunks kept per record (bounded size)
MAX_RUNS = 20


@dataclass(frozen=True)
class SeenBad:
    kind: str
    at: str
    size: int
    mtime: float
    detail: str
    writer: str

    def matches(self, item: Item) -> bool:
        """Is the stored chunk still the file that was found bad?"""
        return item.size == self.size and item.mtime == self.mtime

    def describe(self) -> str:
        return f"{self.kind} when {self.writer} checked it at {self.at}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _load(store: ImageStore, writer: str) -> dict[str, object]:
    try:
        doc = json.loads(store.backend.load(layout.verify_record(writer), MANIFEST_LIMIT))
    except StoreMissing:
        return {}
    except (StoreError, ValueError, RecursionError):
        return {}  # a damaged record is rewritten from scratch
    return doc if isinstance(doc, dict) and doc.get("format") == FORMAT else {}


def _save(store: ImageStore, writer: str, doc: dict[str, object]) -> None:
    store.backend.store(layout.verify_record(writer), json.dumps(doc, indent=1).encode())


def known_bad(store: ImageStore, notices: list[str] | None = None) -> dict[str, SeenBad]:
    """Every chunk a verify record names as bad (with what was seen of its stored file)."""
    found: dict[str, SeenBad] = {}
    try:
        listed = store.backend.list(layout.VERIFY)
    except StoreError as exc:  # e.g. store/verify is a link: no record can be trusted
        if notices is not None:
            notices.append(f"verify records not read: {exc.message}")
        return found
    items = [i for i in listed if i.name.endswith(".json") and i.kind == "file"]
    if len(items) > MAX_RECORDS and notices is not None:
        notices.append(f"{len(items)} verify records; only {MAX_RECORDS} read")
    for item in items[:MAX_RECORDS]:
        writer = item.name[: -len(".json")]
        if not layout.TOKEN.fullmatch(writer):
            continue
        doc = _load(store, writer)
        bad = doc.get("bad")
        if not isinstance(bad, dict):
            continue
        for cid, entry in bad.items():
            if not (isinstance(cid, str) and is_chunk_id(cid) and isinstance(entry, dict)):
                continue
            size, mtime = entry.get("size"), entry.get("mtime")
            if not isinstance(size, int) or not isinstance(mtime, int | float):
                continue
            found[cid] = SeenBad(
                str(entry.get("kind", "bad")),
                str(entry.get("at", "?")),
                size,
                float(mtime),
                str(entry.get("detail", ""))[:300],
                writer,
            )
    return found


def record_bad_chunk(store: ImageStore, writer: str, cid: str, kind: str, detail: str) -> None:
    """Add one bad chunk to `writer`'s record (a restore that found it mid-way)."""
    item = store.chunk_item(cid)
    if item is None:
        return  # missing: the presence check refuses it anyway
    doc = _load(store, writer) or {"format": FORMAT, "writer": writer}
    bad = doc.get("bad")
    bad = bad if isinstance(bad, dict) else {}
    bad[cid] = {
        "kind": kind,
        "at": _now(),
        "size": item.size,
        "mtime": item.mtime,
        "detail": detail,
    }
    doc.update(format=FORMAT, writer=writer, updated=_now(), bad=dict(list(bad.items())[-MAX_BAD:]))
    _save(store, writer, doc)


def write_verify_record(
    store: ImageStore,
    *,
    images: list[tuple[str, str]],
    damaged_images: set[tuple[str, str]],
    checked: set[str],
    bad: Mapping[str, tuple[str, str]],
    writer: str = "verify",
) -> None:
    """Merge one verify run into its record: chunks checked now are good unless in `bad`
    (chunk id -> (kind, detail)); chunks not checked keep what an earlier run found."""
    at = _now()
    doc = _load(store, writer) or {"format": FORMAT, "writer": writer}
    old_bad = doc.get("bad")
    merged: dict[str, object] = {
        k: v for k, v in (old_bad.items() if isinstance(old_bad, dict) else ()) if k not in checked
    }
    for cid, (kind, detail) in bad.items():
        item = store.chunk_item(cid)
        if item is None:
            continue  # missing: presence checks catch it without a record
        merged[cid] = {
            "kind": kind,
            "at": at,
            "size": item.size,
            "mtime": item.mtime,
            "detail": detail[:300],
        }
    old_images = doc.get("images")
    image_doc: dict[str, object] = dict(old_images) if isinstance(old_images, dict) else {}
    for ip, iid in images:
        image_doc[f"{ip}/{iid}"] = {"at": at, "ok": (ip, iid) not in damaged_images}
    old_runs = doc.get("runs")
    runs = list(old_runs) if isinstance(old_runs, list) else []
    runs.append({"at": at, "images": len(images), "chunks": len(checked), "bad": len(bad)})
    doc.update(
        format=FORMAT,
        writer=writer,
        updated=at,
        runs=runs[-MAX_RUNS:],
        images=image_doc,
        bad=dict(list(merged.items())[-MAX_BAD:]),
    )
    _save(store, writer, doc)
