"""Garbage collection: remove chunks no committed image references (contract §4).

It must never remove a chunk a concurrently running backup is about to reference. The
protocol (docs/images.md, "gc safety") pairs with the backup engine:

  backup, per chunk:  add the id to its lease (visible when add returns), THEN look for the
                      chunk; store it when absent. Commit record first, lease released after.
  gc:                 1. candidates = stored chunks older than the grace period that no
                         committed image and no live lease references (mark);
                      2. move every candidate to this run's trash (reversible rename);
                      3. re-read the leases, then the committed images; put back every trashed
                         chunk they reference; 4. only then empty the trash.

Either the backup's lease add comes before gc's re-read in step 3 (gc sees the lease and puts
the chunk back), or after it; then the backup's look-up comes after every move of step 2, finds
the chunk absent and stores it again. A backup that committed and released its lease before
step 3 is seen through its commit record, because step 3 reads leases before commit records.
The grace period (default 1 h) adds a margin for writers that hold no lease (an older engine,
an operator copying chunks by hand); stale leases (a backup killed hard: not touched for 6 h)
are removed. Interrupted backups' image directories without a commit record, older than the
grace period, are removed too.

A gc killed at any point (SIGKILL) leaves its trash in `store/trash/gc-*`, and a backup may have
deduplicated against a chunk that is now there (found it before the move, committed after the
kill). So every gc run starts by putting back everything a dead run left in the trash, then
removes that trash directory; its own mark decides again. Readers (verify, restore) also find
a chunk in a trash directory until then (`ImageStore.find_chunk`); backups never dedup against
the trash. Putting back another run's trash is safe even if that run is alive: its own
put-back then finds the chunk gone from its trash and leaves it.

Damaged images (records that cannot be trusted) are reported, not a stop: every chunk any of
their manifest files names still counts as referenced, so gc never guesses about them.
"""

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from onbox.errors import StoreError
from onbox.store.base import ImageStore

DEFAULT_GRACE = 3600.0
DEFAULT_LEASE_STALE_AFTER = 6 * 3600.0

Hook = Callable[[str], None]


@dataclass
class GcReport:
    chunks_total: int = 0
    referenced: int = 0
    leased: int = 0
    young: int = 0  # unreferenced but within the grace period
    garbage: list[str] = field(default_factory=list)  # candidates (what a dry run would remove)
    rescued: list[str] = field(default_factory=list)  # trashed, then put back (step 3)
    removed: int = 0
    bytes_freed: int = 0
    garbage_bytes: int = 0
    stale_leases: list[str] = field(default_factory=list)
    stale_temps: int = 0
    pending_removed: list[str] = field(default_factory=list)
    trash_restored: int = 0  # chunks a killed gc run had left in its trash, put back
    dead_runs: list[str] = field(default_factory=list)  # those runs' ids
    problems: list[str] = field(default_factory=list)  # damaged or foreign entries (one line)
    dry_run: bool = False


def _committed_refs(
    store: ImageStore, problems: list[str], skip: set[tuple[str, str]] | None = None
) -> set[str]:
    """Chunks of committed images (those in `skip` are already accounted for)."""
    refs: set[str] = set()
    for ip, iid in sorted(_committed_images(store, problems)):
        if skip is not None and (ip, iid) in skip:
            continue
        refs |= store.image_chunk_ids(ip, iid, problems) or set()
    return refs


def _committed_images(store: ImageStore, problems: list[str]) -> set[tuple[str, str]]:
    images = set()
    for ip in store.box_ips(problems):
        try:
            images |= {(ip, iid) for iid in store.committed_ids(ip)}
        except StoreError as exc:
            problems.append(f"{ip}: {exc.message}")
    return images


def restore_dead_trash(store: ImageStore, report: GcReport, own: str | None = None) -> None:
    """Put back every chunk other gc runs left in the trash, then drop their trash dirs."""
    for gc_id in store.trash_runs(report.problems):
        if gc_id == own:
            continue
        for cid in store.trashed_chunks(gc_id):
            if store.untrash_chunk(gc_id, cid):
                report.trash_restored += 1
        store.empty_trash(gc_id)  # what is left is not a chunk (a stray temp file)
        report.dead_runs.append(gc_id)


def collect_garbage(
    store: ImageStore,
    *,
    dry_run: bool,
    grace: float = DEFAULT_GRACE,
    lease_stale_after: float = DEFAULT_LEASE_STALE_AFTER,
    clock: Callable[[], float] = time.time,
    hook: Hook | None = None,
) -> GcReport:
    """Mark and sweep; `hook(phase)` is called between phases (tests interleave backups there)."""

    def at(phase: str) -> None:
        if hook is not None:
            hook(phase)

    report = GcReport(dry_run=dry_run)
    problems = report.problems
    if not dry_run:
        restore_dead_trash(store, report)
        at("restored")
        report.stale_leases = store.remove_stale_leases(lease_stale_after)
    now = clock()
    stats = {s.id: s for s in store.chunk_stats(problems)}
    report.chunks_total = len(stats)
    at("listed")
    seen_images = _committed_images(store, problems)
    referenced = _committed_refs(store, problems)
    leased = store.leased_chunks(lease_stale_after, problems)
    report.referenced = len(referenced & stats.keys())
    report.leased = len((leased - referenced) & stats.keys())
    unreferenced = [s for cid, s in stats.items() if cid not in referenced and cid not in leased]
    candidates = [s for s in unreferenced if now - s.mtime >= grace]
    report.young = len(unreferenced) - len(candidates)
    report.garbage = sorted(s.id for s in candidates)
    report.garbage_bytes = sum(s.stored_bytes for s in candidates)
    at("marked")
    if dry_run:
        return report

    gc_id = f"gc-{int(now)}-{secrets.token_hex(4)}"
    trashed = []
    for index, cid in enumerate(report.garbage):
        if store.trash_chunk(gc_id, cid):
            trashed.append(cid)
        if index == 0:
            at("trashing")
    at("trashed")
    # Step 3: leases first, then commit records (see the module docstring for why this order).
    still_needed = store.leased_chunks(lease_stale_after, problems)
    still_needed |= _committed_refs(store, problems, skip=seen_images)
    for cid in trashed:
        if cid in still_needed:
            store.untrash_chunk(gc_id, cid)
            report.rescued.append(cid)
    at("rescued")
    report.bytes_freed = store.empty_trash(gc_id)
    report.removed = len(trashed) - len(report.rescued)

    # Temp files of chunk writes killed before their rename (a day: a running backup's temp
    # files live for seconds, until their fsync + rename).
    report.stale_temps = store.remove_stale_temps(max(grace, 24 * 3600.0))
    # Image directories without a commit record: a backup still writing (its lease is live;
    # listed before the leases are read, so a backup that was running then is seen) or dead.
    pending = [p for p in store.pending_images(problems) if now - p.mtime >= grace]
    running = store.live_leases(lease_stale_after)
    for p in pending:
        if p.image_id in running:
            continue
        try:
            if store.remove_pending(p.box_ip, p.image_id):
                report.pending_removed.append(f"{p.box_ip}/{p.image_id}")
        except StoreError as exc:
            problems.append(f"{p.box_ip}: {exc.message}")
    return report
