"""Recording the outcome of an attempt and ending the maintenance boot.

`results/<request-id>.json` (schema.request.Result) holds the latest attempt with the history of
the earlier ones; the controller decides from it whether the request is done, should be retried
(the config stays, the box reboots into maintenance again) or has used up its attempts. It is
written atomically: the controller may read it at any moment.

On success the box's PXE config goes (seed behaviour) so the next boot is from the local disk.
Only configs that still name this request are removed: if the controller re-armed the box with
a new request while this one ran, the new config must survive.
"""

import os
import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

import onbox
from onbox.atomic import atomic_write_text, remove_durably
from schema.layout import PXE_CFG_DIR, RESULTS_DIR, hex_ip, parse_managed_header, result_name
from schema.request import Attempt, DiskFigures, Outcome, Request, Result


def result_path(box_dir: Path, request_id: str) -> Path:
    return box_dir / RESULTS_DIR / result_name(request_id)


def previous_result(box_dir: Path, request_id: str) -> tuple[Result | None, str | None]:
    """The result of earlier attempts, or None; a record that cannot be read is reported (the
    second value) and counted as no record: the attempt is recorded afresh rather than lost."""
    path = result_path(box_dir, request_id)
    try:
        return Result.model_validate_json(path.read_bytes()), None
    except FileNotFoundError:
        return None, None
    except (OSError, ValidationError, ValueError) as exc:
        return None, f"{path}: unreadable earlier result, starting its history afresh: {exc}"


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


def write_result(box_dir: Path, result: Result) -> Path:
    path = result_path(box_dir, result.request_id)
    path.parent.mkdir(mode=0o755, exist_ok=True)
    atomic_write_text(path, result.model_dump_json(indent=2) + "\n")
    return path


def configs_to_remove(tftp_root: Path, ip: str, request_id: str) -> tuple[list[Path], list[str]]:
    """The box's configs that still belong to this request: the hex-IP one and any `01-<mac>`
    one naming this request id. Second value: notes on configs left in place."""
    cfg_dir = tftp_root / PXE_CFG_DIR
    remove: list[Path] = []
    notes: list[str] = []
    hex_cfg = cfg_dir / hex_ip(ip)
    try:
        text = hex_cfg.read_text(errors="replace")
    except FileNotFoundError:
        text = None
    if text is not None:
        managed, rid = parse_managed_header(text)
        if managed and rid is not None and rid != request_id:
            notes.append(
                f"{PXE_CFG_DIR}/{hex_cfg.name} now names request {rid}, not {request_id}: "
                "left in place (the box was re-armed)"
            )
        else:
            remove.append(hex_cfg)
    try:
        mac_cfgs = sorted(p for p in cfg_dir.iterdir() if p.name.startswith("01-"))
    except OSError:
        mac_cfgs = []
    for cfg in mac_cfgs:
        try:
            managed, rid = parse_managed_header(cfg.read_text(errors="replace"))
        except OSError:
            continue
        if managed and rid == request_id:
            remove.append(cfg)
    return remove, notes


def remove_configs(paths: list[Path]) -> list[str]:
    removed = []
    for path in paths:
        if remove_durably(path):
            removed.append(f"{PXE_CFG_DIR}/{path.name}")
    return removed


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
