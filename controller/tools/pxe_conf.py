"""`testboxctl pxe-conf IP-OR-NAME ACTION`: the seed's imperative script, as a one-box override.

`testbox-pxe-conf.sh 10.165.98.220 rescue` armed one box; admins still reach for it when a box
needs attention now. It goes through the same planner and apply as `reconcile` (compare-and-swap
of PXE configs, one log line per change): the box is planned with the ACTION as an override
(controller.core.override), and only that box's operations are applied.

The override is recorded in the managed config it writes (only the hex-IP name, like reconcile),
so the next `reconcile` keeps it until its request is done or stalled, and then converges the
box back to the desired file in the same run. `pxe-conf IP none` ends an override now: the
box's managed configs go (the next reconcile arms the desired action again, if it has one).

Each run is a new request (the token defaults to the time of the run), so running the same
command twice runs the action twice, as the script did.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from controller.core.plan import make_plan
from controller.errors import ControllerError
from controller.io import run
from controller.io.lock import DEFAULT_LOCK_TIMEOUT
from controller.io.shares import Shares
from schema.desired import DesiredState, EffectiveBox
from schema.observed import Observed
from schema.plan import Operation, Plan
from schema.request import request_id
from schema.types import ACTIONS, is_ipv4


@dataclass
class PxeConfReport:
    """What one pxe-conf run did, for the CLI to print."""

    box: EffectiveBox
    plan: Plan
    applied: list[str]
    conflicts: list[str]

    @property
    def request_id(self) -> str | None:
        return request_id(self.box)


def find_box(state: DesiredState, ip_or_name: str) -> EffectiveBox:
    """The box named or addressed; an IP not in the desired file gets the site defaults."""
    for box in state.boxes:
        if ip_or_name in (box.ip, box.name) or box.name.lower() == ip_or_name.lower():
            return state.effective(box)
    if not is_ipv4(ip_or_name):
        raise ControllerError(
            f"no box named {ip_or_name!r} in the desired state "
            "(give its name or a canonical dotted-decimal IPv4 address)"
        )
    defaults = state.site.defaults
    return EffectiveBox.model_validate(
        {
            "name": "box-" + ip_or_name.replace(".", "-"),
            "ip": ip_or_name,
            "mac": None,
            "action": "none",
            "disks": defaults.disks,
            "image": None,
            "request": None,
            "retention": defaults.retention,
            "max_attempts": defaults.max_attempts,
        }
    )


def override_box(
    found: EffectiveBox, action: str, token: str | None, image: str | None, now: datetime
) -> EffectiveBox:
    """The box as the override plans it: ACTION with a fresh request (or `token`)."""
    if action not in ACTIONS:
        raise ControllerError(f"unknown action {action!r}; one of: {', '.join(ACTIONS)}")
    armed = action != "none"
    try:
        return EffectiveBox.model_validate(
            {
                **found.model_dump(),
                "action": action,
                "request": (token or f"pxe-conf-{now:%Y%m%dT%H%M%SZ}") if armed else None,
                "image": (image or found.image or "latest") if action == "restore" else None,
            }
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ControllerError(f"invalid --request or --image: {where}: {first['msg']}") from None


def one_box_plan(state: DesiredState, box: EffectiveBox) -> Callable[[Observed], Plan]:
    """Plan the lab with `box` as an override and keep only that box's operations.

    Retention is left to reconcile (an override arms; it does not prune). For `none`, only the
    removal of the box's managed configs is kept: disarming creates nothing.
    """
    keep = {"remove-config"} if box.action == "none" else None

    def make(observed: Observed) -> Plan:
        full = make_plan(state, observed, allow_empty=True, overrides={box.ip: box})
        ops = [
            op
            for op in full.operations
            if op.ip == box.ip and op.kind != "prune-image" and (keep is None or op.kind in keep)
        ]
        blocked = [n for n in full.notices if n.ip == box.ip and n.kind == "blocked"]
        if blocked:
            raise ControllerError(f"{blocked[0].path}: {blocked[0].message}")
        notices = [n for n in full.notices if n.ip == box.ip]
        return full.model_copy(update={"operations": ops, "notices": notices})

    return make


def pxe_conf(
    state: DesiredState,
    shares: Shares,
    ip_or_name: str,
    action: str,
    *,
    token: str | None = None,
    image: str | None = None,
    now: datetime | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    warn: run.Warn | None = None,
) -> PxeConfReport:
    """Arm `ip_or_name` for `action` now (or disarm it for `none`) through plan and apply."""
    box = override_box(find_box(state, ip_or_name), action, token, image, now or datetime.now(UTC))
    outcome = run.converge(
        shares,
        one_box_plan(state, box),
        holder=f"testboxctl pxe-conf {ip_or_name} {action}",
        lock_timeout=lock_timeout,
        warn=warn or (lambda _t: None),
    )
    return PxeConfReport(
        box=box,
        plan=outcome.plan,
        applied=[_done(op, shares) for op in outcome.report.applied],
        conflicts=[_done(op, shares) for op in outcome.report.conflicts],
    )


def _done(op: Operation, shares: Shares) -> str:
    root = shares.tftp if op.share == "tftp" else shares.backup
    verb = {"remove-config": "removed", "create-box-dir": "created"}.get(op.kind, "wrote")
    return f"{verb} {root / op.path} ({op.reason})"
