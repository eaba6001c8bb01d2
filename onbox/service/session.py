"""One maintenance boot, start to end: the order of the steps and what each failure means.

1. start-up: IP, host name, both shares mounted (one retry);
2. the request: kernel command line, the box's PXE config, `<ip>/request.json`;
3. the attempt: disks, info files, the action;
4. the outcome: `results/<id>.json`, then on success the PXE config goes, sync, reboot; on
   failure the config stays, pause, reboot (the box retries; the controller stops the retries
   after max_attempts). Rescue records `rescue-ready` and stays up.

Errors before step 3 (no share, wrong IP, no or a stale request) change nothing on the shares
except log lines: there is no request to record a result for, and no disk is touched.
"""

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import onbox
from onbox.errors import OnboxError
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
from onbox.service.startup import first_ipv4, lookup_hostname, wait_for_shares
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
    hostname = lookup_hostname(ip)
    log.say(f"testbox-maintenance {onbox.__version__}: {ip} ({hex_ip(ip)}), host {hostname}")
    try:
        wait_for_shares(opts.tftp_root, opts.backup_root, opts.retry_pause, log.say)
    except OnboxError as exc:
        log.error(exc.message)
        return failure
    log.share_ready(opts.backup_root)
    # --- the request ----------------------------------------------------------------------
    box_dir = opts.backup_root / ip
    try:
        text = opts.cmdline if opts.cmdline is not None else read_cmdline(DEFAULT_CMDLINE_FILE)
        boot = parse_cmdline(text)
        box_config(opts.tftp_root, ip)
    except OnboxError as exc:
        if box_dir.is_dir():
            log.box_ready(box_dir)
        log.event("error", exc.message)
        return failure
    box_dir.mkdir(mode=0o755, exist_ok=True)
    log.box_ready(box_dir)
    log.event(
        "info",
        f"==== testbox-maintenance {onbox.__version__} session: action {boot.action}, "
        f"request {boot.request_id}, host {hostname} ====",
    )
    try:
        request = load_request(box_dir, boot, ip)
    except OnboxError as exc:
        log.event("error", exc.message)
        return failure
    return _attempt(opts, log=log, box_dir=box_dir, boot=boot, request=request, hostname=hostname)


def _attempt(
    opts: Options,
    *,
    log: SessionLog,
    box_dir: Path,
    boot: BootRequest,
    request: Request,
    hostname: str,
) -> Ending:
    started = datetime.now(UTC)
    t0 = time.monotonic()
    previous, problem = outcome.previous_result(box_dir, request.request_id)
    if problem:
        log.error(problem)
    attempt = (previous.attempt if previous else 0) + 1
    log.info(f"attempt {attempt} of at most {request.max_attempts}")
    report = ActionReport()
    error: str | None = None
    try:
        disks = select_disks(box_dir, opts.disk_map, log.info)
        if boot.action in IMAGING_ACTIONS and sorted(disks) != sorted(request.disks):
            log.info(
                f"imaging disks {', '.join(disks) or '(none)'}; the request lists "
                f"{', '.join(request.disks)}"
            )
        if (
            boot.action in ("backup", "backup-again", "refresh-info")
            or not (box_dir / INFO_TXT).exists()
        ):
            written = write_info(box_dir, request.ip, hostname, disks)
            log.info(f"info written: {', '.join(written)}")
        report = run_action(opts.backup_root, request, disks, log)
    except OnboxError as exc:
        error = exc.message
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
        hostname,
        previous,
        outcome=result_outcome,
        started=started,
        finished=finished,
        disks=report.disks,
        image_id=report.image_id,
        error=error,
    )
    try:
        path = outcome.write_result(box_dir, result)
    except OSError as exc:
        log.event("error", f"cannot write the result record: {exc.strerror or exc}")
        return Ending(exit_code=1, reboot=True, pause=opts.retry_pause)
    seconds = time.monotonic() - t0
    if error is not None:
        log.event(
            "error",
            f"{boot.action} failed (attempt {attempt} of {request.max_attempts}, "
            f"{seconds:.1f} s): {error}",
        )
        log.info(f"result recorded in {path.relative_to(box_dir)}; PXE config kept for a retry")
        return Ending(exit_code=1, reboot=True, pause=opts.retry_pause)
    if boot.action == "rescue":
        log.event("info", "rescue ready: the maintenance system stays up (no reboot)")
        return Ending(exit_code=0, reboot=False)
    log.event(
        "info",
        f"{boot.action} succeeded (attempt {attempt}, {seconds:.1f} s)"
        + (f", image {report.image_id}" if report.image_id else ""),
    )
    to_remove, notes = outcome.configs_to_remove(opts.tftp_root, request.ip, request.request_id)
    for note in notes:
        log.info(note)
    try:
        removed = outcome.remove_configs(to_remove)
    except OSError as exc:
        # The result says success: the controller removes the config on its next run.
        log.event("error", f"cannot remove the PXE config: {exc.strerror or exc}")
        removed = []
    if removed:
        log.info(f"removed {', '.join(removed)}")
    return Ending(exit_code=0, reboot=True)
