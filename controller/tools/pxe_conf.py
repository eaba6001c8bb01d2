"""`testboxctl pxe-conf IP-OR-NAME ACTION`: the seed's imperative script, kept for muscle memory.

`testbox-pxe-conf.sh 10.165.98.220 rescue` wrote one box's PXE config; admins still reach for
it when a box needs attention now. This arms (or, with `none`, disarms) one box directly:
request files on the backup share first, then the managed PXE config that points at them —
the same files and the same rendering as `reconcile`, so the on-box service cannot tell.

Each run is a new request (the token defaults to the time of the run), so running the same
command twice runs the action twice, as the script did. The desired state still rules: the
next `reconcile` converges the box back to what the desired file says.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from controller.core.boxfiles import disk_list_text, request_json_text
from controller.core.render import render_box_config
from controller.errors import ControllerError, ShareError
from controller.io.shares import Shares
from onbox.atomic import atomic_write_bytes, atomic_write_text, remove_durably
from onbox.logfile import append_log
from schema.desired import DesiredState, EffectiveBox
from schema.layout import (
    BACKUP_MARKER,
    DEFAULT_CONFIG,
    DISK_LIST,
    GLOBAL_LOG,
    PXE_CFG_DIR,
    REQUEST_FILE,
    config_names,
    parse_managed_header,
)
from schema.request import Request
from schema.types import ACTIONS


@dataclass
class PxeConfReport:
    """What one pxe-conf run did, one line per change, for the CLI to print."""

    box: EffectiveBox
    request_id: str | None = None
    done: list[str] = field(default_factory=list)


def _is_ipv4(text: str) -> bool:
    parts = text.split(".")
    return len(parts) == 4 and all(p.isdigit() for p in parts)


def find_box(state: DesiredState, ip_or_name: str) -> EffectiveBox:
    """The box named or addressed; an IP not in the desired file gets the site defaults."""
    for box in state.boxes:
        if ip_or_name in (box.ip, box.name) or box.name.lower() == ip_or_name.lower():
            return state.effective(box)
    if not _is_ipv4(ip_or_name):
        raise ControllerError(f"no box named {ip_or_name!r} in the desired state (give its IP)")
    name = "box-" + ip_or_name.replace(".", "-")
    try:
        return EffectiveBox.model_validate(
            {
                "name": name,
                "ip": ip_or_name,
                "mac": None,
                "action": "none",
                "disks": state.site.defaults.disks,
                "image": None,
                "request": None,
                "retention": state.site.defaults.retention,
                "max_attempts": state.site.defaults.max_attempts,
            }
        )
    except ValueError:
        raise ControllerError(f"not an IPv4 address: {ip_or_name!r}") from None


def _check_shares(shares: Shares) -> None:
    if not (shares.backup / BACKUP_MARKER).is_file():
        raise ShareError(f"{shares.backup}: no {BACKUP_MARKER} marker: backup share not mounted")
    if not (shares.tftp / PXE_CFG_DIR / DEFAULT_CONFIG).is_file():
        raise ShareError(
            f"{shares.tftp}: no {PXE_CFG_DIR}/{DEFAULT_CONFIG}: TFTP share not mounted"
        )


def _foreign(path: Path) -> bool:
    managed, _ = parse_managed_header(path.read_text(encoding="utf-8", errors="replace"))
    return not managed


def pxe_conf(
    state: DesiredState,
    shares: Shares,
    ip_or_name: str,
    action: str,
    *,
    token: str | None = None,
    image: str | None = None,
    force: bool = False,
    now: datetime | None = None,
) -> PxeConfReport:
    """Arm `ip_or_name` for `action` (or disarm it for `none`); return what was done."""
    if action not in ACTIONS:
        raise ControllerError(f"unknown action {action!r}; one of: {', '.join(ACTIONS)}")
    found = find_box(state, ip_or_name)
    _check_shares(shares)
    configs = [shares.tftp / PXE_CFG_DIR / name for name in config_names(found.ip, found.mac)]
    foreign = [p for p in configs if p.is_file() and _foreign(p)]
    if foreign and not force:
        raise ControllerError(
            f"{foreign[0]}: not written by testboxctl (no managed-by marker); "
            "leaving it alone (use --force to replace or remove it)"
        )

    if action == "none":
        report = PxeConfReport(box=found)
        for path in configs:
            if remove_durably(path):
                report.done.append(f"removed {path}")
        if not report.done:
            report.done.append(f"no PXE config for {found.name} ({found.ip}): nothing to do")
        else:
            _log(shares, found, "pxe-conf: disarmed (PXE config removed)")
        return report

    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    try:
        box = EffectiveBox.model_validate(
            {
                **found.model_dump(),
                "action": action,
                "request": token or f"pxe-conf-{stamp}",
                "image": (image or found.image or "latest") if action == "restore" else None,
            }
        )
    except ValueError as exc:
        raise ControllerError(f"invalid --request or --image: {exc}") from None
    request = Request.for_box(box)
    report = PxeConfReport(box=box, request_id=request.request_id)
    box_dir = shares.backup / box.ip
    try:
        box_dir.mkdir(exist_ok=True)
        if not (box_dir / box.name).exists():
            atomic_write_bytes(box_dir / box.name, b"")
            report.done.append(f"wrote {box_dir / box.name}")
        # Request files before the config that points at them (a box may boot any moment).
        atomic_write_text(box_dir / DISK_LIST, disk_list_text(box.disks))
        report.done.append(f"wrote {box_dir / DISK_LIST}")
        atomic_write_text(box_dir / REQUEST_FILE, request_json_text(request))
        report.done.append(f"wrote {box_dir / REQUEST_FILE} (request {request.request_id})")
        text = render_box_config(state.site, box, request.request_id)
        for path in configs:
            atomic_write_text(path, text)
            report.done.append(f"wrote {path} ({action}, request {request.request_id})")
    except OSError as exc:
        raise ControllerError(f"cannot write {exc.filename or 'a file'}: {exc.strerror}") from None
    _log(shares, box, f"pxe-conf: armed {action}, request {request.request_id}")
    return report


def _log(shares: Shares, box: EffectiveBox, text: str) -> None:
    try:
        append_log(shares.backup / GLOBAL_LOG, box.ip, "info", f"testboxctl {text}")
    except OSError as exc:
        raise ControllerError(f"cannot append to {shares.backup / GLOBAL_LOG}: {exc}") from None
