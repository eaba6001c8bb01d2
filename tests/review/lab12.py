"""A lab of 12 boxes, two in each status state (contract §5), with real images in the real store.

Used by the status page and Prometheus tests. Images are made by the real backup engine from
small disk files (different content per backup, some shared, so dedup and compression ratios
are real), results are written as the on-box service writes them, and configs are put in place
by a real reconcile. One box is left out of sync on purpose (armed in the desired file, not yet
reconciled), so the page's "pending reconcile" shows too.
"""

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from controller.core.plan import make_plan
from controller.io.apply import apply_plan
from controller.io.observe import observe
from controller.io.shares import Shares
from onbox.imaging.backup import backup_disks
from onbox.store import open_store
from schema.desired import DesiredState
from schema.request import request_id
from tests.lab_builder import T0, desired, make_shares, write_result
from tests.review.helpers import write_desired

STATES = ("idle", "armed", "failed", "stalled", "done", "rescue")

BOXES: list[dict[str, Any]] = [
    {"name": "tb-idle-01", "ip": "10.0.3.11"},
    {"name": "tb-idle-02", "ip": "10.0.3.12"},
    {"name": "tb-armed-01", "ip": "10.0.3.21", "action": "backup"},
    {"name": "tb-armed-02", "ip": "10.0.3.22", "action": "restore", "image": "latest"},
    {"name": "tb-failed-01", "ip": "10.0.3.31", "action": "backup"},
    {"name": "tb-failed-02", "ip": "10.0.3.32", "action": "backup-again", "request": "T-2"},
    {"name": "tb-stalled-01", "ip": "10.0.3.41", "action": "backup"},
    {"name": "tb-stalled-02", "ip": "10.0.3.42", "action": "restore"},
    {"name": "tb-done-01", "ip": "10.0.3.51", "action": "backup"},
    {"name": "tb-done-02", "ip": "10.0.3.52", "action": "refresh-info"},
    {"name": "tb-rescue-01", "ip": "10.0.3.61", "action": "rescue"},
    {"name": "tb-rescue-02", "ip": "10.0.3.62", "action": "rescue"},
]
# Results per box (outcome, attempt); the stalled ones reach max_attempts (3).
RESULTS = {
    "tb-failed-01": ("failure", 1),
    "tb-failed-02": ("failure", 2),
    "tb-stalled-01": ("failure", 3),
    "tb-stalled-02": ("failure", 3),
    "tb-done-01": ("success", 1),
    "tb-done-02": ("success", 1),
    "tb-rescue-02": ("rescue-ready", 1),
}
# Backups per box: how many, so the charts have lines, dots and nothing.
BACKUPS = {
    "tb-idle-01": 4,
    "tb-armed-02": 3,
    "tb-failed-01": 2,
    "tb-stalled-02": 1,
    "tb-done-01": 5,
    "tb-rescue-01": 2,
}
OUT_OF_SYNC = "tb-armed-01"
OVERDUE = "tb-idle-01"
# Keep every backup (the site default keeps 2): the charts show a history.
for _box in BOXES:
    _box["retention"] = {"keep_last": 10}


def _disk(path: Path, n: int, size: int = 256 * 1024) -> Path:
    """A disk whose content grows with each backup: a shared base, new blocks, zeros."""
    base = bytes(range(256)) * (size // 512)  # compressible, shared across backups
    fresh = os.urandom(16 * 1024 * (n + 1))  # incompressible, new each time
    body = (base + fresh)[:size]
    path.write_bytes(body + b"\0" * (size - len(body)))
    return path


def build_lab12(root: Path) -> tuple[Shares, Path, DesiredState]:
    shares = make_shares(root / "shares")
    state = desired(*BOXES)
    synced = desired(*[b for b in BOXES if b["name"] != OUT_OF_SYNC])
    apply_plan(make_plan(synced, observe(shares, now=T0), revision="a1b2c3d4e5f6"), shares)
    store = open_store(shares.backup)
    work = root / "disks"
    work.mkdir()
    by_name = {b.name: b for b in state.effective_boxes()}
    for name, count in BACKUPS.items():
        box = by_name[name]
        for n in range(count):
            when = T0 - timedelta(days=2 * (count - n)) - timedelta(hours=n)
            disk = _disk(work / f"{name}-{n}.img", n)
            backup_disks(store, box.ip, {"sda": disk}, chunk_size=32 * 1024, workers=1, now=when)
    for name, (outcome, attempt) in RESULTS.items():
        box = by_name[name]
        rid = request_id(box)
        assert rid is not None
        path = write_result(shares, box.ip, rid, outcome, attempt, action=box.action)
        if outcome == "failure":
            text = path.read_text().replace("disk read error", f"sda: read error at {attempt} GiB")
            path.write_text(text)
    # As the on-box service would: a finished request's config goes (here: by the next run).
    apply_plan(make_plan(synced, observe(shares, now=T0), revision="a1b2c3d4e5f6"), shares)
    # tb-idle-01's newest backup (8 days old) is older than its schedule: the page marks it
    # overdue. The window starts 6 hours from now, so the schedule arms nothing during the test.
    start = (datetime.now(UTC) + timedelta(hours=6)).replace(minute=0)
    window = f"{start:%H:%M}-{start + timedelta(hours=1):%H:%M}"
    boxes = [
        b | {"schedule": {"backup_every": "1d", "window": window}} if b["name"] == OVERDUE else b
        for b in BOXES
    ]
    desired_file = write_desired(root / "desired.yaml", boxes, shares.tftp, shares.backup)
    return shares, desired_file, state
