"""Scheduled backups (contract §3), decided purely from the desired box, its images and the clock.

A box whose desired action is `none` and whose newest image is older than `backup_every` (or
that has no image) gets a scheduled request: `backup-again` (`backup` without an image). Its
request token is derived from the moment the backup fell due, so:
- the same due backup keeps the same request id on every run (it is armed once, and a success
  is recognised as done);
- due moments follow each other every `backup_every` from the newest image (from the epoch for a
  box without an image), and the token is the latest one that has passed: a stalled scheduled
  request (attempt limit reached) stays disarmed until the next due moment, then a new one is
  armed;
- a scheduled request that is armed (its config in place, its token in request.json) stays the
  box's request until it is done or stalled, even when the next due moment passes meanwhile: a
  slow box must not get a new request id (and a new round of power cycles) every period;
- with a `window`, a scheduled request is armed only inside it, but one already armed is kept
  while it runs past the window's end (disarming a box mid-backup would waste the backup).
An explicit action always wins: the schedule only applies to action `none`.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from controller.core.boxfiles import parse_request
from schema.desired import EffectiveBox
from schema.image import ImageInfo
from schema.observed import ObservedResult
from schema.request import request_id
from schema.schedule import duration_seconds, in_window, next_window_start

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TOKEN_PREFIX = "sched-"


@dataclass(frozen=True, slots=True)
class ScheduleDecision:
    # The box to plan: the desired one, or a copy carrying the scheduled request.
    box: EffectiveBox
    # When the next scheduled backup is (or was) due; None: no schedule in effect.
    next_due: datetime | None
    # Why a scheduled request was made (for the plan's reasons); None: not scheduled.
    reason: str | None = None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def schedule_token(due: datetime) -> str:
    """The request token of the backup that fell due at `due` (a valid RequestToken)."""
    return TOKEN_PREFIX + _utc(due).strftime("%Y%m%dT%H%M%SZ")


def token_moment(token: str | None) -> datetime | None:
    """The due moment a schedule token names; None for any other token."""
    if token is None or not token.startswith(TOKEN_PREFIX):
        return None
    try:
        return datetime.strptime(token[len(TOKEN_PREFIX) :], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def armed_token(request_json: str | None, armed_request: str | None) -> str | None:
    """The token of the box's request.json when it is the armed request (else None)."""
    request = parse_request(request_json) if armed_request is not None else None
    return request.token if request is not None and request.request_id == armed_request else None


def _window_start(window: str | None, moment: datetime) -> datetime:
    return moment if window is None else next_window_start(window, moment)


def scheduled(
    box: EffectiveBox,
    images: list[ImageInfo],
    results: dict[str, ObservedResult],
    armed_request: str | None,
    now: datetime,
    *,
    armed_token: str | None = None,
) -> ScheduleDecision:
    """The box with its scheduled request, if one is due. Pure.

    `armed_request` is the request id of the managed config in place for the box (if any) and
    `armed_token` the token of its request.json (when that is the same request), so a scheduled
    request that is armed stays the same request until it is done or stalled.
    """
    schedule = box.schedule
    if schedule is None or box.action != "none":
        return ScheduleDecision(box, None)
    now = _utc(now)
    every = timedelta(seconds=duration_seconds(schedule.backup_every))
    newest = max((_utc(image.created) for image in images), default=None)
    first_due = newest + every if newest is not None else EPOCH + (now - EPOCH) // every * every
    if now < first_due:
        return ScheduleDecision(box, _window_start(schedule.window, first_due))
    due = first_due + (now - first_due) // every * every
    action = "backup-again" if newest is not None else "backup"
    candidate = box.model_copy(update={"action": action, "request": schedule_token(due)})
    rid = request_id(candidate)
    sticky = token_moment(armed_token)
    if (
        sticky is not None
        and sticky != due
        and sticky <= now
        and (newest is None or sticky >= first_due)
    ):
        # The request armed earlier for this box, if it is this schedule's: keep it.
        earlier = box.model_copy(update={"action": action, "request": schedule_token(sticky)})
        if request_id(earlier) == armed_request:
            due, candidate, rid = sticky, earlier, armed_request
    result = results.get(rid) if rid is not None else None
    if result is not None and result.outcome == "failure" and result.attempt >= box.max_attempts:
        # Stalled: disarmed (the planner says so) until the next due moment makes a new request.
        return ScheduleDecision(
            candidate,
            _window_start(schedule.window, due + every),
            f"scheduled backup due since {due:%Y-%m-%dT%H:%M:%SZ} stalled",
        )
    if not in_window(schedule.window, now) and armed_request != rid:
        return ScheduleDecision(box, _window_start(schedule.window, now))
    age = "no image yet" if newest is None else f"newest image from {newest:%Y-%m-%dT%H:%M:%SZ}"
    reason = (
        f"scheduled (backup_every {schedule.backup_every}): due since "
        f"{due:%Y-%m-%dT%H:%M:%SZ}, {age}"
    )
    return ScheduleDecision(candidate, due, reason)
