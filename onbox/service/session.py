"""One maintenance boot, start to end: the order of the steps and what each failure means.

1. start-up: IP, the host name's reverse lookup started (waited for where the name is used:
   a backup's info files, the result record), both shares mounted (one retry);
2. the request: kernel command line, the box's PXE config, `<ip>/request.json`;
3. the attempt: disks, info files, the action;
4. the outcome: `results/<id>.json`, then on success the PXE config goes, sync, reboot; on
   failure the config stays, pause, reboot (the box retries; the controller stops the retries
   after max_attempts). Rescue records `rescue-ready` and stays up.

Errors before step 3 (no share, wrong IP, no or a stale request) change nothing on the shares
except log lines: there is no request to record a result for, and no disk is touched.

Everything on the two shares is reached through `onbox.shareio.Share` (docs/threat-model.md,
"service"): a link, FIFO, device or directory where a record belongs, or a record too large or
malformed, is a one-line reason in the logs and exit 1. When the result itself cannot be
written (share full or read-only), the service removes its own PXE config instead of rebooting
into an endless retry loop (`_no_result_way_out`).
"""

import contextlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import onbox
from onbox.errors import OnboxError, ServiceError
from onbox.service import outcome
from onbox.service.actions import ActionReport, run_action
from onbox.service.args import DEFAULT_CMDLINE_FILE, Options
from onbox.service.disks import select_disks
from onbox.service.info import write_info
from onbox.service.logs import SessionLog
from onbox.service.request import (
    BootRequest,
    box_config,
    load_request,
    parse_cmdline,
    read_cmdline,
)
from onbox.service.startup import HostnameLookup, first_ipv4, wait_for_shares
from onbox.shareio import Share, ShareAccessError
from schema.layout import INFO_TXT, hex_ip
from schema.request import Outcome, Request

IMAGING_ACTIONS = ("backup", "backup-again", "restore")


@dataclass
class Ending:
    """How the run ends: exit code and whether to reboot (after a pause)."""

    exit_code: int
    reboot: bool
    pause: float = 0.0
    notes: list[str] = field(default_factory=list)


def run(opts: Options, log: SessionLog) -> int:
    try:
        ending = _run(opts, log)
    except Exception as exc:
        # A bug must not leave the box sitting in maintenance: report it, then end like any
        # failure (pause, reboot, retry; the controller stops after max_attempts).
        log.event("error", f"unexpected {type(exc).__name__}: {exc}")
        ending = Ending(exit_code=1, reboot=True, pause=opts.retry_pause)
    if ending.reboot and not opts.no_reboot:
        if ending.pause > 0:
            log.say(f"pausing {ending.pause:g} s before rebooting to retry")
            outcome.pause(ending.pause)
        outcome.sync()
        log.say("rebooting")
        log.say(f"reboot requested with {outcome.reboot()}")
    elif ending.reboot:
        log.say("--no-reboot: not rebooting")
    return ending.exit_code


def _run(opts: Options, log: SessionLog) -> Ending:
    failure = Ending(exit_code=1, reboot=True, pause=opts.retry_pause)
    # --- start-up -------------------------------------------------------------------------
    try:
        ip = opts.ip or first_ipv4()
    except OnboxError as exc:
        log.error(exc.message)
        return failure
    log.ip = ip
    # Asked for only where the name is used (startup.HostnameLookup says why).
    hostname = HostnameLookup(ip)
    log.say(f"testbox-maintenance {onbox.__version__}: {ip} ({hex_ip(ip)})")
    try:
        wait_for_shares(opts.tftp_root, opts.backup_root, opts.retry_pause, log.say)
        # Every read and write below goes through these two (onbox.shareio): no link below
        # a share's root is followed, nothing but regular files is read, every read bounded.
        backup = Share(opts.backup_root)
        tftp = Share(opts.tftp_root)
    except OnboxError as exc:
        log.error(exc.message)
        return failure
    log.share_ready(backup)
    # --- the request ----------------------------------------------------------------------
    try:
        text = opts.cmdline if opts.cmdline is not None else read_cmdline(DEFAULT_CMDLINE_FILE)
        boot = parse_cmdline(text)
        box_config(tftp, ip)
    except OnboxError as exc:
        if backup.is_dir(ip):
            with contextlib.suppress(ShareAccessError):
                log.box_ready(backup.sub(ip))
        log.event("error", exc.message)
        return failure
    try:
        box = backup.sub(ip, create=True)
    except ShareAccessError as exc:
        # No box directory, so no result can be written: take the way out of the loop.
        log.event("error", f"box directory unusable: {exc.message}")
        return _no_result_way_out(opts, tftp, ip, boot.request_id, log)
    log.box_ready(box)
    log.event(
        "info",
        f"==== testbox-maintenance {onbox.__version__} session: action {boot.action}, "
        f"request {boot.request_id} ====",
    )
    try:
        request = load_request(box, boot, ip)
    except OnboxError as exc:
        log.event("error", exc.message)
        return failure
    return _attempt(
        opts, log=log, box=box, tftp=tftp, boot=boot, request=request, hostname=hostname
    )


def _attempt(
    opts: Options,
    *,
    log: SessionLog,
    box: Share,
    tftp: Share,
    boot: BootRequest,
    request: Request,
    hostname: HostnameLookup,
) -> Ending:
    started = datetime.now(UTC)
    t0 = time.monotonic()
    previous, problem = outcome.previous_result(box, request.request_id)
    attempt = (previous.attempt if previous else 0) + 1
    log.info(f"attempt {attempt} of at most {request.max_attempts}")
    report = ActionReport()
    error: str | None = None
    partial: list[str] = []
    try:
        if problem is not None:
            # A record that is a link, a FIFO, too large or invalid was not written by this
            # service (its writes are atomic): act on nothing, record the refusal in its place.
            raise ServiceError(f"{problem}; attempt refused, the record is written afresh")
        if log.broken:
            # A log that is a link, a FIFO or a directory is somebody's doing: act on nothing
            # until the share is repaired (the result says why).
            raise ServiceError(f"{log.broken[0]}; attempt refused")
        disks = select_disks(box, opts.disk_map, log.info, wait=opts.disk_wait)
        if boot.action in IMAGING_ACTIONS and sorted(disks) != sorted(request.disks):
            log.info(
                f"imaging disks {', '.join(disks) or '(none)'}; the request lists "
                f"{', '.join(request.disks)}"
            )
        if boot.action in ("backup", "backup-again", "refresh-info") or not box.is_file(INFO_TXT):
            written = write_info(box, request.ip, _host(hostname, log), disks)
            for note in written.notes:
                log.info(note)
            log.info(f"info written: {', '.join(written.names)}")
        report = run_action(opts.backup_root, request, disks, log)
    except OnboxError as exc:
        error = exc.message
        partial = list(getattr(exc, "disks", None) or [])  # restore.PartialRestore
    except OSError as exc:
        error = f"{exc.filename or 'I/O'}: {exc.strerror or exc}"
    except Exception as exc:  # recorded as a failed attempt, so the retries are counted
        error = f"unexpected {type(exc).__name__}: {exc}"
    finished = datetime.now(UTC)
    result_outcome: Outcome
    if error is not None:
        result_outcome = "failure"
    elif boot.action == "rescue":
        result_outcome = "rescue-ready"
    else:
        result_outcome = "success"
    result = outcome.make_result(
        request,
        _host(hostname, log),
        previous,
        outcome=result_outcome,
        started=started,
        finished=finished,
        disks=report.disks,
        image_id=report.image_id,
        error=error,
    )
    if partial:
        result = result.model_copy(update={"partial_disks": partial})
    seconds = time.monotonic() - t0
    if error is not None:
        log.event(
            "error",
            f"{boot.action} failed (attempt {attempt} of {request.max_attempts}, "
            f"{seconds:.1f} s): {error}",
        )
    try:
        rel = outcome.write_result(box, result)
    except ShareAccessError as exc:
        log.event("error", f"cannot write the result record: {exc.message}")
        return _no_result_way_out(opts, tftp, request.ip, request.request_id, log)
    if error is not None:
        log.info(f"result recorded in {rel}; PXE config kept for a retry")
        return Ending(exit_code=1, reboot=True, pause=opts.retry_pause)
    if boot.action == "rescue":
        log.event("info", "rescue ready: the maintenance system stays up (no reboot)")
        return Ending(exit_code=0, reboot=False)
    log.event(
        "info",
        f"{boot.action} succeeded (attempt {attempt}, {seconds:.1f} s)"
        + (f", image {report.image_id}" if report.image_id else ""),
    )
    # If the removal fails, the result still says success: the controller removes the config
    # on its next run.
    _remove_own_configs(tftp, request.ip, request.request_id, log)
    return Ending(exit_code=0, reboot=True)


def _host(lookup: HostnameLookup, log: SessionLog) -> str:
    """The box's host name, logged the first time it is asked for."""
    first = not lookup.answered
    name = lookup.name()
    if first:
        log.info(f"host name {name}")
    return name


def _remove_own_configs(tftp: Share, ip: str, request_id: str, log: SessionLog) -> list[str] | None:
    """Remove this request's PXE configs; the ones removed, or None when removal failed."""
    to_remove, notes = outcome.configs_to_remove(tftp, ip, request_id)
    for note in notes:
        log.info(note)
    try:
        removed = outcome.remove_configs(tftp, to_remove)
    except ShareAccessError as exc:
        log.event("error", f"cannot remove the PXE config: {exc.message}")
        return None
    if removed:
        log.info(f"removed {', '.join(removed)}")
    return removed


def _no_result_way_out(
    opts: Options, tftp: Share, ip: str, request_id: str, log: SessionLog
) -> Ending:
    """The result cannot be written (share full or read-only, box directory unusable).

    Rebooting into a retry would loop for ever: the controller only sees attempts that have
    results, and a restore would rewrite the disk on every boot. So the service removes its own
    PXE config (only one that still names this request): the next boot falls back to
    `default`, the local disk. If that fails too, it does not reboot at all, and says so on
    the console; the box stays in the maintenance system until someone looks.
    """
    removed = _remove_own_configs(tftp, ip, request_id, log)
    if removed is None:
        log.event(
            "error",
            "no result recorded and the PXE config cannot be removed: not rebooting, so the "
            "box does not loop through maintenance boots (it stays up in the maintenance system)",
        )
        return Ending(exit_code=1, reboot=False)
    log.event(
        "error",
        "no result recorded: PXE config "
        + (f"removed ({', '.join(removed)})" if removed else "already gone")
        + ", so the next boot is from the local disk instead of another maintenance boot "
        "(the controller reports the request without a result)",
    )
    return Ending(exit_code=1, reboot=True)
