"""The schedule planner (contract §3) as a table: desired box + images + results + now → request.

Pure: no shares. Each row says what `controller.core.schedule.scheduled` must decide and what
`make_plan` then does with the box (armed, disarmed, left idle).
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controller.core.requeststate import decide
from controller.core.schedule import schedule_token, scheduled
from schema.desired import DesiredState, EffectiveBox
from schema.image import ImageInfo
from schema.observed import ObservedResult
from schema.request import request_id
from schema.schedule import duration_seconds, in_window, next_window_start
from tests.lab_builder import SITE

NOW = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
DAY = timedelta(days=1)


def box(**fields: Any) -> EffectiveBox:
    entry = {"name": "tb1", "ip": "10.0.2.15", **fields}
    state = DesiredState.model_validate({"site": SITE, "boxes": [entry]})
    return state.effective_boxes()[0]


def image(created: datetime) -> ImageInfo:
    return ImageInfo(id=f"img-{created:%Y%m%d%H%M%S}", box_ip="10.0.2.15", created=created)


def failed(b: EffectiveBox, attempts: int) -> dict[str, ObservedResult]:
    rid = request_id(b)
    assert rid is not None
    return {rid: ObservedResult(request_id=rid, outcome="failure", attempt=attempts)}


DAILY = {"schedule": {"backup_every": "1d"}}


def test_no_schedule_changes_nothing() -> None:
    b = box()
    decision = scheduled(b, [], {}, None, NOW)
    assert decision.box == b and decision.next_due is None


def test_no_image_is_due_now_as_backup() -> None:
    decision = scheduled(box(**DAILY), [], {}, None, NOW)
    assert decision.box.action == "backup"  # `backup`, not backup-again: there is no image
    # Without an image the due moments are aligned to the epoch: today 00:00 UTC.
    due = datetime(2026, 12, 1, tzinfo=UTC)
    assert decision.box.request == schedule_token(due) == "sched-20261201T000000Z"
    assert decision.next_due == due
    assert "no image yet" in (decision.reason or "")


def test_fresh_image_is_not_due() -> None:
    created = NOW - timedelta(hours=3)
    decision = scheduled(box(**DAILY), [image(created)], {}, None, NOW)
    assert decision.box.action == "none" and decision.reason is None
    assert decision.next_due == created + DAY


def test_old_image_is_due_as_backup_again_with_a_stable_token() -> None:
    created = NOW - timedelta(days=1, hours=2)
    first = scheduled(box(**DAILY), [image(created)], {}, None, NOW)
    assert first.box.action == "backup-again"
    assert first.box.request == schedule_token(created + DAY)
    # A later run of the same due backup: same request id, so it is armed once.
    later = scheduled(box(**DAILY), [image(created)], {}, None, NOW + timedelta(hours=5))
    assert request_id(later.box) == request_id(first.box)


def test_due_outside_the_window_is_not_armed_until_the_window_opens() -> None:
    b = box(schedule={"backup_every": "1d", "window": "01:00-05:00"})
    decision = scheduled(b, [image(NOW - 2 * DAY)], {}, None, NOW)
    assert decision.box.action == "none"
    assert decision.next_due == datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
    inside = scheduled(b, [image(NOW - 2 * DAY)], {}, None, NOW.replace(hour=2))
    assert inside.box.action == "backup-again"


def test_a_scheduled_request_running_when_the_window_closes_stays_armed() -> None:
    b = box(schedule={"backup_every": "1d", "window": "01:00-05:00"})
    images = [image(NOW - 2 * DAY)]
    armed = scheduled(b, images, {}, None, NOW.replace(hour=4, minute=59))
    rid = request_id(armed.box)
    after = scheduled(b, images, {}, rid, NOW.replace(hour=5, minute=30))
    assert request_id(after.box) == rid


def test_stalled_scheduled_request_waits_for_the_next_due_moment() -> None:
    created = NOW - timedelta(days=1, hours=2)
    b = box(**DAILY)
    due = scheduled(b, [image(created)], {}, None, NOW)
    results = failed(due.box, attempts=3)
    stalled = scheduled(b, [image(created)], results, None, NOW)
    assert request_id(stalled.box) == request_id(due.box)
    assert decide(
        stalled.box, request_id(stalled.box), results[request_id(due.box) or ""]
    ).state == ("stalled")
    assert stalled.next_due == created + 2 * DAY
    # Once the next due moment has passed, a new request (new token) is armed.
    next_day = scheduled(b, [image(created)], results, None, created + 2 * DAY + timedelta(hours=1))
    assert next_day.box.request == schedule_token(created + 2 * DAY)
    assert request_id(next_day.box) != request_id(due.box)


def test_failed_below_the_limit_stays_the_same_request() -> None:
    created = NOW - timedelta(days=1, hours=2)
    b = box(**DAILY)
    due = scheduled(b, [image(created)], {}, None, NOW)
    again = scheduled(b, [image(created)], failed(due.box, attempts=1), None, NOW)
    assert again.box == due.box


@pytest.mark.parametrize("action", ["backup", "backup-again", "refresh-info", "rescue", "restore"])
def test_an_explicit_action_overrides_the_schedule(action: str) -> None:
    b = box(action=action, **DAILY)
    decision = scheduled(b, [image(NOW - 10 * DAY)], {}, None, NOW)
    assert decision.box == b and decision.next_due is None


def test_schedule_null_turns_the_defaults_schedule_off() -> None:
    site = {**SITE, "defaults": {**SITE.get("defaults", {}), "schedule": {"backup_every": "7d"}}}
    state = DesiredState.model_validate(
        {
            "site": site,
            "boxes": [
                {"name": "tb1", "ip": "10.0.2.15"},
                {"name": "tb2", "ip": "10.0.2.16", "schedule": None},
                {"name": "tb3", "ip": "10.0.2.17", "schedule": {"backup_every": "1h"}},
            ],
        }
    )
    schedules = [b.schedule for b in state.effective_boxes()]
    assert [s.backup_every if s else None for s in schedules] == ["7d", None, "1h"]


def test_durations_and_windows() -> None:
    assert [duration_seconds(v) for v in ("2s", "30m", "1h", "7d", "2w")] == [
        2,
        1800,
        3600,
        604800,
        1209600,
    ]
    for bad in ("", "0s", "7", "1.5h", "-1d", "1y", "7 d", "1dd"):
        with pytest.raises(ValueError):
            duration_seconds(bad)
    assert in_window("22:00-02:00", NOW.replace(hour=23))
    assert in_window("22:00-02:00", NOW.replace(hour=1, minute=59))
    assert not in_window("22:00-02:00", NOW.replace(hour=2))
    assert next_window_start("22:00-02:00", NOW) == NOW.replace(hour=22, minute=0)


def test_an_armed_scheduled_request_stays_when_the_next_due_moment_passes() -> None:
    """A slow box keeps its request (and its power-cycle count) across due moments."""
    created = NOW - timedelta(days=1, hours=2)
    b = box(**DAILY)
    first = scheduled(b, [image(created)], {}, None, NOW)
    rid = request_id(first.box)
    later = NOW + 2 * DAY
    kept = scheduled(b, [image(created)], {}, rid, later, armed_token=first.box.request)
    assert request_id(kept.box) == rid
    # Not armed any more (disarmed, or another request in place): the latest due moment.
    assert request_id(scheduled(b, [image(created)], {}, None, later).box) != rid
    # A token that is not this schedule's is ignored.
    other = scheduled(b, [image(created)], {}, rid, later, armed_token="2026-11-25")
    assert request_id(other.box) != rid
