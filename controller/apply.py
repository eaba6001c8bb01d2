"""Executes a plan. Decides nothing: every choice (what, why, in which order) is in the plan.

Each operation is idempotent (writing the same bytes again, removing a file already gone,
deleting an image already deleted change nothing), every write is atomic with mode 0644
(onbox.atomic), and every change is one line in the backup share's global `maintenance.log`.
The plan's order is the safe order (see controller.plan); apply keeps it. If an operation fails,
apply stops there: everything before it is complete and durable, nothing after it was started,
and the next reconcile plans the rest.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

from controller.errors import ApplyError
from controller.shares import Shares
from onbox.atomic import atomic_write_text, fsync_dir, remove_durably
from onbox.errors import ImageNotFound, OnboxError
from onbox.logfile import append_log
from onbox.store import open_store
from onbox.store.base import ImageStore
from schema.layout import GLOBAL_LOG
from schema.plan import Operation, Plan

_VERBS = {
    "remove-config": "removed",
    "create-box-dir": "created directory",
    "write-hostname": "wrote",
    "write-request": "wrote",
    "write-disk-list": "wrote",
    "write-config": "wrote",
    "prune-image": "pruned image",
}


@dataclass
class ApplyReport:
    applied: list[Operation] = field(default_factory=list)
    # Already in the planned state when apply got there (an idempotent re-run).
    unchanged: list[Operation] = field(default_factory=list)


def describe(op: Operation) -> str:
    """The log line's text for one operation."""
    where = op.image_id if op.kind == "prune-image" else f"{op.share}:{op.path}"
    return f"testboxctl: {_VERBS[op.kind]} {where} ({op.reason})"


def _root(op: Operation, shares: Shares) -> Path:
    return shares.tftp if op.share == "tftp" else shares.backup


def _run(op: Operation, shares: Shares, store: ImageStore) -> bool:
    """Carry out one operation; False when it found the share already as planned."""
    path = _root(op, shares) / op.path
    if op.kind == "remove-config":
        return remove_durably(path)
    if op.kind == "create-box-dir":
        if path.is_dir():
            return False
        os.mkdir(path, 0o755)
        fsync_dir(path.parent)
        return True
    if op.kind == "prune-image":
        if op.ip is None or op.image_id is None:
            raise ApplyError(f"plan operation prune-image {op.path} names no box or image")
        try:
            store.delete_image(op.ip, op.image_id)
        except ImageNotFound:
            return False
        return True
    # The writes: hostname file, request.json, disk-devices.lst, PXE config.
    content = op.content or ""
    try:
        if path.read_text("utf-8") == content:
            return False
    except FileNotFoundError:
        pass
    atomic_write_text(path, content, 0o644)
    return True


def apply_plan(plan: Plan, shares: Shares, *, store: ImageStore | None = None) -> ApplyReport:
    """Run the plan's operations in order. Raises ApplyError naming the operation that failed."""
    store = store or open_store(shares.backup)
    log = shares.backup / GLOBAL_LOG
    report = ApplyReport()
    for op in plan.operations:
        try:
            changed = _run(op, shares, store)
            if changed:
                append_log(log, op.ip or "-", "info", describe(op))
        except (OSError, OnboxError) as exc:
            reason = exc.message if isinstance(exc, OnboxError) else (exc.strerror or str(exc))
            raise ApplyError(
                f"{op.kind} {op.share}:{op.path} failed: {reason}; "
                f"{len(report.applied)} of {len(plan.operations)} changes were made before it, "
                "run reconcile again to finish"
            ) from None
        (report.applied if changed else report.unchanged).append(op)
    return report
