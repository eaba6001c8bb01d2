"""Recording the outcome of an attempt and ending the maintenance boot.

`results/<request-id>.json` (schema.request.Result) holds the latest attempt with the history of
the earlier ones; the controller decides from it whether the request is done, should be retried
(the config stays, the box reboots into maintenance again) or has used up its attempts. It is
written atomically through `onbox.shareio`: the controller may read it at any moment, and a
link, FIFO or directory in its place is never followed.

On success the box's PXE config goes (seed behaviour) so the next boot is from the local disk.
Only configs that still name this request are removed: if the controller re-armed the box with
a new request while this one ran, the new config must survive. The same removal is the way out
when the result cannot be written at all (share full or read-only): see `session`.
"""

import os
import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

import onbox
from onbox.shareio import RECORD_LIMIT, TEXT_LIMIT, Share, ShareAccessError, parse_json
from schema.layout import PXE_CFG_DIR, RESULTS_DIR, hex_ip, parse_managed_header, result_name
from schema.request import Attempt, DiskFigures, Outcome, Request, Result


def result_rel(request_id: str) -> str:
    return f"{RESULTS_DIR}/{result_name(request_id)}"


def previous_result(box: Share, request_id: str) -> tuple[Result | None, str | None]:
    """The result of earlier attempts, or None; a record that is not a regular file, too large
    or invalid is reported (the second value): the session then refuses the attempt and
    records the refusal afresh in its place (the bad entry is replaced, never followed)."""
    rel = result_rel(request_id)
    try:
        raw = box.try_read_bytes(rel, RECORD_LIMIT)
        if raw is None:
            return None, None
        parse_json(raw, box.path(rel))
        return Result.model_validate_json(raw), None
    except ShareAccessError as exc:
        return None, f"earlier result unusable: {exc.message}"
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        msg = " ".join(str(first["msg"]).split())[:200]
        return None, f"earlier result unusable: {box.path(rel)}: {where}: {msg}"


def make_result(
    request: Request,
    hostname: str,
    previous: Result | None,
    *,
    outcome: Outcome,
    started: datetime,
    finished: datetime,
    disks: list[DiskFigures],
    image_id: str | None,
    error: str | None,
) -> Result:
    attempt = (previous.attempt if previous else 0) + 1
    history = list(previous.history) if previous else []
    history.append(
        Attempt(attempt=attempt, outcome=outcome, started=started, finished=finished, error=error)
    )
    return Result(
        request_id=request.request_id,
        action=request.action,
        ip=request.ip,
        hostname=hostname,
        outcome=outcome,
        attempt=attempt,
        started=started,
        finished=finished,
        disks=disks,
        image_id=image_id,
        error=error,
        service_version=onbox.__version__,
        history=history,
    )


def write_result(box: Share, result: Result) -> str:
    """Write the record; its share-relative name. Raises ShareAccessError (ENOSPC, EROFS, a
    directory in its place, `results` not a directory)."""
    rel = result_rel(result.request_id)
    box.mkdir(RESULTS_DIR)
    box.write_atomic(rel, result.model_dump_json(indent=2) + "\n")
    return rel


def configs_to_remove(tftp: Share, ip: str, request_id: str) -> tuple[list[str], list[str]]:
    """The box's configs that still belong to this request: the hex-IP one and any `01-<mac>`
    one naming this request id (share-relative names). Second value: notes on configs left in
    place. Only regular files are read or removed; anything else is noted and left."""
    remove: list[str] = []
    notes: list[str] = []
    hex_rel = f"{PXE_CFG_DIR}/{hex_ip(ip)}"
    try:
        text = tftp.try_read_text(hex_rel, TEXT_LIMIT)
    except ShareAccessError as exc:
        notes.append(f"{exc.message}: left in place")
        text = None
    if text is not None:
        managed, rid = parse_managed_header(text)
        if managed and rid is not None and rid != request_id:
            notes.append(
                f"{hex_rel} now names request {rid}, not {request_id}: "
                "left in place (the box was re-armed)"
            )
        else:
            remove.append(hex_rel)
    try:
        entries = tftp.entries(PXE_CFG_DIR)
    except ShareAccessError:
        entries = []
    for entry in entries:
        if not entry.name.startswith("01-") or entry.kind != "file":
            continue
        rel = f"{PXE_CFG_DIR}/{entry.name}"
        try:
            managed, rid = parse_managed_header(tftp.read_text(rel, TEXT_LIMIT))
        except ShareAccessError:
            continue
        if managed and rid == request_id:
            remove.append(rel)
    return remove, notes


def remove_configs(tftp: Share, rels: list[str]) -> list[str]:
    """Remove the configs (regular files only); the ones removed. Raises ShareAccessError."""
    return [rel for rel in rels if tftp.remove(rel)]


def sync() -> None:
    os.sync()


def reboot() -> str:
    """Ask for a reboot; the command used. `systemctl reboot` under systemd (clean unmounts of
    the NFS shares), else `reboot -f`."""
    if Path("/run/systemd/system").is_dir() and shutil.which("systemctl"):
        argv = ["systemctl", "reboot"]
    else:
        argv = ["reboot", "-f"]
    subprocess.run(argv, check=False)
    return " ".join(argv)


def pause(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)
