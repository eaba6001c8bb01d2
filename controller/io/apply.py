"""Executes a plan. Decides nothing: every choice (what, why, in which order) is in the plan.

Every write and removal goes through `onbox.shareio.Share` (contract §9): no link below a share
root is ever followed, only regular files are replaced or removed, every write is atomic
(temp file with a short name in the same directory, fsync, rename) with mode 0644, and every
change is one line in the backup share's global `maintenance.log` (appended without following
a link; a global log that is not a regular file is a warning, not a stop).

Each operation is idempotent (writing the same bytes again, removing a file already gone,
deleting an image already deleted change nothing). The plan's order is the safe order (see
controller.core.plan); apply keeps it. PXE config changes are compare-and-swap against what the
plan saw (see `_run_config`).

One box never stops the lab: when an operation fails (a box directory turned into a link
between observing and applying, a full share), the box's remaining operations are skipped (its
config is never put in place without the files before it), every other box's operations still
run, and the failures are reported at the end, one line each (exit 1). The next reconcile plans
the rest.
"""

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from controller.errors import ApplyError
from controller.io.power.credentials import CredentialSource
from controller.io.power.run import DEFAULT_WORKERS, run_power_cycles
from controller.io.shares import Shares
from onbox.errors import ImageNotFound, OnboxError
from onbox.logfile import utc_now_iso
from onbox.shareio import TEXT_LIMIT, Share, ShareAccessError, ShareMissing
from onbox.store import open_store
from onbox.store.base import ImageStore
from schema.layout import GLOBAL_LOG, IMAGES_DIR, log_line
from schema.plan import Operation, Plan

_VERBS = {
    "remove-config": "removed",
    "create-box-dir": "created directory",
    "write-hostname": "wrote",
    "write-request": "wrote",
    "write-disk-list": "wrote",
    "record-arm": "wrote",
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
    # (operation, one-line reason) of each operation that failed.
    failed: list[tuple[Operation, str]] = field(default_factory=list)
    # Operations not tried because an earlier operation of the same box failed.
    skipped: list[Operation] = field(default_factory=list)
    # One line each: things that did not stop apply (the global log could not be written).
    warnings: list[str] = field(default_factory=list)
    # Power cycles not run: the box's config was not in place for the request any more.
    power_skipped: list[Operation] = field(default_factory=list)
    # One line per box whose power cycle failed (BMC unreachable, command failed).
    power_failures: list[str] = field(default_factory=list)


Outcome = Literal["applied", "unchanged", "conflict"]


def describe(op: Operation, revision: str | None = None) -> str:
    """The log line of one operation, ending with the desired state's revision (contract §8)."""
    where = op.image_id if op.kind == "prune-image" else f"{op.share}:{op.path}"
    return f"testboxctl: {_VERBS[op.kind]} {where} ({op.reason}) [revision {revision or 'unknown'}]"


def _current(share: Share, rel: str) -> str | None:
    """A file's text as observe reads it (None when absent); a link or FIFO raises."""
    data = share.try_read_bytes(rel, TEXT_LIMIT)
    return None if data is None else data.decode("utf-8", errors="replace")


def _run_config(op: Operation, tftp: Share) -> Outcome:
    """PXE configs are compare-and-swap: the on-box service removes its config on success
    without taking the lock, so a config may change after it was observed. Acting on the old
    facts could re-arm a request that just finished; the operation is skipped instead (and so
    is one whose file turned into a link or a FIFO: it is not what the plan saw)."""
    try:
        current = _current(tftp, op.path)
    except ShareMissing:
        current = None
    except ShareAccessError:
        return "conflict"
    wanted = op.content if op.kind == "write-config" else None
    if current == wanted:
        return "unchanged"
    if current != op.old_content:
        return "conflict"
    if op.kind == "remove-config":
        tftp.remove(op.path)
    else:
        tftp.write_atomic(op.path, op.content or "", 0o644)
    return "applied"


def _prune(op: Operation, backup: Share, store: ImageStore) -> Outcome:
    if op.ip is None or op.image_id is None:
        raise ApplyError(f"plan operation prune-image {op.path} names no box or image")
    # The image store deletes by path; make sure nothing on the way is a link first.
    for rel in (op.ip, f"{op.ip}/{IMAGES_DIR}", f"{op.ip}/{IMAGES_DIR}/{op.image_id}"):
        kind = backup.kind(rel)
        if kind == "missing":
            return "unchanged"
        if kind != "dir":
            raise ShareAccessError(backup.path(rel), "is not a directory; image not pruned")
    try:
        store.delete_image(op.ip, op.image_id)
    except ImageNotFound:
        return "unchanged"
    return "applied"


def _run(op: Operation, tftp: Share, backup: Share, store: ImageStore) -> Outcome:
    """Carry out one operation."""
    if op.kind in ("remove-config", "write-config"):
        return _run_config(op, tftp)
    if op.kind == "create-box-dir":
        kind = backup.kind(op.path)
        if kind == "dir":
            return "unchanged"
        if kind != "missing":
            raise ShareAccessError(backup.path(op.path), "exists and is not a directory")
        backup.mkdir(op.path)
        return "applied"
    if op.kind == "prune-image":
        return _prune(op, backup, store)
    # The backup share's files: hostname file, request.json, disk-devices.lst, armed.json.
    content = op.content or ""
    if _current(backup, op.path) == content:
        return "unchanged"
    backup.write_atomic(op.path, content, 0o644)
    return "applied"


def _reason(exc: Exception) -> str:
    if isinstance(exc, OnboxError | ApplyError):
        return exc.message
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


@contextlib.contextmanager
def _share(path: str) -> Iterator[Share]:
    try:
        share = Share(path)
    except ShareAccessError as exc:
        raise ApplyError(f"{exc.path}: {exc.problem}; nothing applied") from None
    with share:
        yield share


class _Log:
    """The global log, appended through shareio; the first failure becomes one warning."""

    def __init__(self, backup: Share, report: ApplyReport) -> None:
        self.backup = backup
        self.report = report
        self.broken = False

    def write(self, op: Operation, revision: str | None) -> None:
        if self.broken:
            return
        try:
            line = log_line(utc_now_iso(), op.ip or "-", "info", describe(op, revision))
            self.backup.append(GLOBAL_LOG, line)
        except (ShareAccessError, OSError) as exc:
            self.broken = True
            self.report.warnings.append(f"{GLOBAL_LOG}: {_reason(exc)}; changes not logged there")


def apply_plan(
    plan: Plan,
    shares: Shares,
    *,
    store: ImageStore | None = None,
    credentials: CredentialSource | None = None,
    power_workers: int = DEFAULT_WORKERS,
) -> ApplyReport:
    """Run the plan's operations in order; a failed box is skipped, the others go on.

    Raises ApplyError (after everything else ran) when any operation failed; the error's
    `report` holds what was done, and its message has one line per failed operation.
    Power cycles (contract §7) run last, after every file is in place, in parallel
    (controller.io.power.run); a BMC that cannot be reached is one line in `power_failures`.
    """
    store = store or open_store(shares.backup)
    report = ApplyReport()
    failed_boxes: set[str] = set()
    power_ops = [op for op in plan.operations if op.kind == "power-cycle"]
    with _share(str(shares.tftp)) as tftp, _share(str(shares.backup)) as backup:
        log = _Log(backup, report)
        for op in plan.operations:
            if op.kind == "power-cycle":
                continue
            if op.ip is not None and op.ip in failed_boxes:
                report.skipped.append(op)
                continue
            try:
                outcome = _run(op, tftp, backup, store)
            except (OSError, OnboxError, ApplyError) as exc:
                report.failed.append((op, _reason(exc)))
                if op.ip is not None:
                    failed_boxes.add(op.ip)
                continue
            if outcome == "applied":
                log.write(op, plan.revision)
            {
                "applied": report.applied,
                "unchanged": report.unchanged,
                "conflict": report.conflicts,
            }[outcome].append(op)
    # A box whose files could not be written is not power-cycled into a half-armed request.
    power_ops = [op for op in power_ops if op.ip not in failed_boxes]
    report.skipped.extend(
        op for op in plan.operations if op.kind == "power-cycle" and op not in power_ops
    )
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
    if report.failed:
        raise ApplyFailed(report, len(plan.operations))
    return report


class ApplyFailed(ApplyError):
    """Some operations failed; the others were applied. One line per failure."""

    def __init__(self, report: ApplyReport, total: int) -> None:
        lines = [f"{op.kind} {op.share}:{op.path} failed: {why}" for op, why in report.failed]
        done = len(report.applied) + len(report.unchanged)
        lines.append(
            f"{done} of {total} changes are in place, {len(report.skipped)} skipped after a "
            "failure of the same box; fix the above and run reconcile again"
        )
        super().__init__("\n".join(lines))
        self.report = report
        self.lines = lines


def sweep_temp_files(shares: Shares, paths: Iterable[tuple[str, str]]) -> tuple[int, list[str]]:
    """Remove dead temp files (share, path) a killed run left behind: (removed, warnings).

    Which ones are dead and ours is the core's decision (controller.core.sweep); this removes
    regular files only, never through a link, and a failure is a warning, not a stop.
    """
    removed = 0
    warnings: list[str] = []
    with _share(str(shares.tftp)) as tftp, _share(str(shares.backup)) as backup:
        for share_name, rel in paths:
            share = tftp if share_name == "tftp" else backup
            try:
                removed += share.remove(rel)
            except ShareAccessError as exc:
                warnings.append(f"{exc.path}: {exc.problem}; temp file not swept")
    return removed, warnings
