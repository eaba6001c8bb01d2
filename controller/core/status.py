"""`testboxctl status`: where each box stands (contract §5), computed from desired + observed.

Pure, like the planner, and built on it: each box's `in_sync` is "the planner has no operation
for this box" (the very plan `reconcile --dry-run` shows), its state comes from the same
`decide`, and a one-box override (`pxe-conf`) shows as the box's action until it is done. The
`--json` shape is a contract: one object with a list `boxes`, each with `name`, `ip`, `action`,
`request_id`, `state` and `images` (each with `id`), plus the last result and the age of the
newest backup, when the next scheduled backup is due (`next_backup_due`, contract §3) and what
the last power cycle did (`power`, contract §7).
"""

from datetime import UTC, datetime

from pydantic import BaseModel

from controller.core.boxfiles import parse_request
from controller.core.override import planned_boxes
from controller.core.plan import make_plan
from controller.core.plan_box import box_problems
from controller.core.power_plan import parse_power_record
from controller.core.requeststate import BoxState, decide
from controller.core.schedule import armed_token, scheduled
from schema.desired import DesiredState, EffectiveBox
from schema.image import ImageInfo
from schema.layout import hex_ip
from schema.observed import Observed, ObservedResult
from schema.request import request_id
from schema.schedule import duration_seconds

STATUS_FORMAT_VERSION = 1


class ImageSummary(BaseModel):
    id: str
    created: datetime
    kind: str
    # Sum over the image's disks: their size, and their chunks' compressed size as stored
    # (0 for legacy images, where it is unknown).
    logical_bytes: int = 0
    stored_bytes: int = 0


class LastResult(BaseModel):
    request_id: str
    outcome: str
    attempt: int
    finished: datetime | None
    error: str | None


class PowerSummary(BaseModel):
    """The box's last power cycle (`<ip>/power.json`)."""

    request_id: str
    method: str
    cycle: int
    time: datetime
    outcome: str
    power_state: str | None
    action: str | None
    error: str | None


class BoxStatus(BaseModel):
    name: str
    ip: str
    action: str
    request_id: str | None
    state: BoxState
    reason: str
    # The managed config in place for the box right now (None: not armed on the share).
    config: str | None
    # False when reconcile would change something for this box (the planner has operations).
    in_sync: bool
    # True while a one-box override (`testboxctl pxe-conf`) rules this box instead of the file.
    override: bool = False
    last_result: LastResult | None
    images: list[ImageSummary]
    newest_backup: datetime | None
    newest_backup_age_seconds: int | None
    # contract §8: the desired state's revision recorded in the box's request.json for its current
    # request (the commit that armed it); None when unknown or no request.json of this request.
    armed_revision: str | None = None
    # When the box's newest successful request finished (any request, not only the current).
    last_success: datetime | None = None
    # ISO-8601 UTC; None when the box has no schedule in effect (or an explicit action).
    next_backup_due: datetime | None = None
    # The schedule's backup_every in seconds when a schedule is in effect (action none): the
    # status page marks the newest backup overdue when it is older than this.
    backup_every_seconds: int | None = None
    power: PowerSummary | None = None
    # Damage on the share for this box (a link, a FIFO, a malformed record), one line each
    # naming the path (SPEC §9); the planner disarms such a box and leaves it alone.
    problems: list[str] = []


class StatusReport(BaseModel):
    format_version: int = STATUS_FORMAT_VERSION
    observed_at: datetime
    boxes: list[BoxStatus]
    orphaned_boxes: list[str]
    foreign_configs: list[str]


def _last(results: dict[str, ObservedResult], rid: str | None) -> ObservedResult | None:
    if rid is not None and rid in results:
        return results[rid]
    dated = [r for r in results.values() if r.finished is not None]
    return max(dated, key=lambda r: r.finished or datetime.min) if dated else None


def _image_summary(image: ImageInfo) -> ImageSummary:
    return ImageSummary(
        id=image.id,
        created=image.created,
        kind=image.kind,
        logical_bytes=sum(d.size for d in image.disks),
        stored_bytes=sum(d.stored_bytes for d in image.disks),
    )


def _every(box: EffectiveBox) -> int | None:
    if box.schedule is None or box.action != "none":
        return None
    return duration_seconds(box.schedule.backup_every)


def _armed_revision(request_text: str | None, rid: str | None) -> str | None:
    """The revision in request.json, if that file is the box's current request."""
    request = parse_request(request_text)
    return request.revision if request is not None and request.request_id == rid else None


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def _power(text: str | None) -> PowerSummary | None:
    try:
        record = parse_power_record(text)
    except ValueError:
        return None  # the plan reports a damaged power.json as a notice
    if record is None:
        return None
    return PowerSummary(
        request_id=record.request_id,
        method=record.method,
        cycle=record.cycle,
        time=record.time,
        outcome=record.outcome,
        power_state=record.power_state,
        action=record.action,
        error=record.error,
    )


def box_states(desired: DesiredState, observed: Observed) -> StatusReport:
    now = observed.observed_at
    # allow_empty: status reports; refusing an empty desired state is reconcile's business.
    plan = make_plan(desired, observed, allow_empty=True)
    pending = {op.ip for op in plan.operations if op.ip is not None}
    boxes = []
    for entry in planned_boxes(desired, observed):
        seen = observed.boxes.get(entry.box.ip)
        results = seen.results if seen is not None else {}
        cfg = observed.configs.get(hex_ip(entry.box.ip))
        config = cfg.name if cfg is not None and cfg.managed else None
        # The same schedule decision as the planner's (contract §3): a due backup shows as armed.
        armed = cfg.request_id if config is not None and cfg is not None else None
        when = scheduled(
            entry.box,
            seen.images if seen is not None else [],
            results,
            armed,
            now,
            armed_token=armed_token(seen.request_json if seen is not None else None, armed),
        )
        box = when.box
        rid = request_id(box)
        decision = decide(
            box,
            rid,
            results.get(rid) if rid else None,
            arms=seen.arms if seen is not None and seen.arm_request == rid else 0,
            config_in_place=cfg is not None and cfg.managed and cfg.request_id == rid,
        )
        last = _last(results, rid)
        images = seen.images if seen is not None else []
        newest = max((_utc(i.created) for i in images), default=None)
        request_text = seen.request_json if seen is not None else None
        boxes.append(
            BoxStatus(
                name=box.name,
                ip=box.ip,
                action=box.action,
                request_id=rid,
                state=decision.state,
                reason=decision.reason,
                config=config,
                in_sync=box.ip not in pending,
                override=entry.override,
                last_result=None
                if last is None
                else LastResult(
                    request_id=last.request_id,
                    outcome=last.outcome,
                    attempt=last.attempt,
                    finished=last.finished,
                    error=last.error,
                ),
                images=[_image_summary(i) for i in images],
                newest_backup=newest,
                newest_backup_age_seconds=None
                if newest is None
                else max(0, int((now - newest).total_seconds())),
                armed_revision=_armed_revision(request_text, rid),
                last_success=max(
                    (r.finished for r in results.values() if r.outcome == "success" and r.finished),
                    default=None,
                ),
                next_backup_due=when.next_due,
                backup_every_seconds=_every(entry.box),
                power=_power(seen.power_json if seen is not None else None),
                problems=[*box_problems(box, seen), *seen.image_problems]
                if seen is not None
                else [],
            )
        )
    desired_ips = {b.box.ip for b in planned_boxes(desired, observed)}
    return StatusReport(
        observed_at=now,
        boxes=boxes,
        orphaned_boxes=sorted(ip for ip in observed.boxes if ip not in desired_ips),
        foreign_configs=sorted(n for n, c in observed.configs.items() if not c.managed),
    )
