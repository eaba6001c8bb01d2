"""Executes a plan. Decides nothing: every choice (what, why, in which order) is in the plan.

Each operation is idempotent (writing the same bytes again, removing a file already gone,
deleting an image already deleted change nothing), every write is atomic with mode 0644
(onbox.atomic), and every change is one line in the backup share's global `maintenance.log`.
The plan's order is the safe order (see controller.core.plan); apply keeps it. PXE config changes
are compare-and-swap against what the plan saw (see `_run_config`). If an operation fails,
apply stops there: everything before it is complete and durable, nothing after it was started,
and the next reconcile plans the rest.

Power cycles (SPEC §7) are the exception to "stop at the first failure": they run last, after
every file is in place, in parallel (controller.io.power.run), and a BMC that cannot be reached
is one line in `power_failures` while the other boxes are still cycled; the CLI then exits 1.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from controller.errors import ApplyError
from controller.io.power.credentials import CredentialSource
from controller.io.power.run import DEFAULT_WORKERS, run_power_cycles
from controller.io.shares import Shares
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
    "power-cycle": "power-cycled",
}


@dataclass
class ApplyReport:
    applied: list[Operation] = field(default_factory=list)
    # Already in the planned state when apply got there (an idempotent re-run).
    unchanged: list[Operation] = field(default_factory=list)
    # PXE configs that changed between observing and applying (a box finished and removed its
    # config, someone edited it): left alone; the next reconcile plans them from the new facts.
    conflicts: list[Operation] = field(default_factory=list)
    # Power cycles not run: the box's config was not in place for the request any more.
    power_skipped: list[Operation] = field(default_factory=list)
    # One line per box whose power cycle failed (BMC unreachable, command failed).
    power_failures: list[str] = field(default_factory=list)


Outcome = Literal["applied", "unchanged", "conflict"]


def describe(op: Operation, revision: str | None = None) -> str:
    """The log line's text for one operation, ending with the desired state's revision (SPEC §8)."""
    where = op.image_id if op.kind == "prune-image" else f"{op.share}:{op.path}"
    return f"testboxctl: {_VERBS[op.kind]} {where} ({op.reason}) [revision {revision or 'unknown'}]"


def _root(op: Operation, shares: Shares) -> Path:
    return shares.tftp if op.share == "tftp" else shares.backup


def _current(path: Path) -> str | None:
    """A file's text as observe reads it (None when absent)."""
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None


def _run_config(op: Operation, path: Path) -> Outcome:
    """PXE configs are compare-and-swap: the on-box service removes its config on success
    without taking the lock, so a config may change after it was observed. Acting on the old
    facts could re-arm a request that just finished; the operation is skipped instead."""
    current = _current(path)
    wanted = op.content if op.kind == "write-config" else None
    if current == wanted:
        return "unchanged"
    if current != op.old_content:
        return "conflict"
    if op.kind == "remove-config":
        remove_durably(path)
    else:
        atomic_write_text(path, op.content or "", 0o644)
    return "applied"


def _run(op: Operation, shares: Shares, store: ImageStore) -> Outcome:
    """Carry out one operation."""
    path = _root(op, shares) / op.path
    if op.kind in ("remove-config", "write-config"):
        return _run_config(op, path)
    if op.kind == "create-box-dir":
        if path.is_dir():
            return "unchanged"
        os.mkdir(path, 0o755)
        fsync_dir(path.parent)
        return "applied"
    if op.kind == "prune-image":
        if op.ip is None or op.image_id is None:
            raise ApplyError(f"plan operation prune-image {op.path} names no box or image")
        try:
            store.delete_image(op.ip, op.image_id)
        except ImageNotFound:
            return "unchanged"
        return "applied"
    # The backup share's files: hostname file, request.json, disk-devices.lst.
    content = op.content or ""
    if _current(path) == content:
        return "unchanged"
    atomic_write_text(path, content, 0o644)
    return "applied"


def apply_plan(
    plan: Plan,
    shares: Shares,
    *,
    store: ImageStore | None = None,
    credentials: CredentialSource | None = None,
    power_workers: int = DEFAULT_WORKERS,
) -> ApplyReport:
    """Run the plan's operations in order. Raises ApplyError naming the operation that failed."""
    store = store or open_store(shares.backup)
    log = shares.backup / GLOBAL_LOG
    report = ApplyReport()
    power_ops = [op for op in plan.operations if op.kind == "power-cycle"]
    for op in plan.operations:
        if op.kind == "power-cycle":
            continue
        try:
            outcome = _run(op, shares, store)
            if outcome == "applied":
                append_log(log, op.ip or "-", "info", describe(op, plan.revision))
        except (OSError, OnboxError) as exc:
            reason = exc.message if isinstance(exc, OnboxError) else (exc.strerror or str(exc))
            raise ApplyError(
                f"{op.kind} {op.share}:{op.path} failed: {reason}; "
                f"{len(report.applied)} of {len(plan.operations)} changes were made before it, "
                "run reconcile again to finish"
            ) from None
        {"applied": report.applied, "unchanged": report.unchanged, "conflict": report.conflicts}[
            outcome
        ].append(op)
    if power_ops:
        power = run_power_cycles(
            power_ops,
            shares.tftp,
            shares.backup,
            credentials or CredentialSource(),
            workers=power_workers,
        )
        report.applied.extend(power.cycled)
        report.power_skipped.extend(power.skipped)
        report.power_failures.extend(power.failures)
    return report
