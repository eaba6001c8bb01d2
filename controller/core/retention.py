"""Which images a box may lose under its retention policy. Pure: no I/O, no clock.

Semantics follow restic's `forget`: images are taken newest first; `keep_last N` keeps the N
newest; `keep_daily N` keeps the newest image of each of the N most recent UTC days that have
an image (likewise ISO weeks for `keep_weekly`, calendar months for `keep_monthly`). Each rule
keeps its own set; the union is kept and everything else is prunable. On top of the policy:
the newest chunked image is always kept, protected ids (an armed restore's target) are always
kept, legacy images are never pruned (they are not the store's to delete), and a policy with no
rule at all keeps everything. Images dated in the future are refused before this runs (see
`future_images`, the one rule here that needs the clock, passed in as `now`): the order below
trusts `created`. The retention rules depend only on the images' own dates, so the result is
stable across runs.
"""

from collections.abc import Callable, Sequence, Set
from datetime import UTC, datetime, timedelta

from schema.desired import Retention
from schema.image import ImageInfo

# How far ahead of the controller's clock an image's `created` may be before retention refuses to
# act: boxes' clocks drift (and the observation is a few seconds old), an hour is not drift.
FUTURE_SKEW = timedelta(hours=1)

Bucket = Callable[[datetime], tuple[int, ...]]

_BUCKETS: dict[str, Bucket] = {
    "keep_daily": lambda t: (t.year, t.month, t.day),
    "keep_weekly": lambda t: tuple(t.isocalendar()[:2]),
    "keep_monthly": lambda t: (t.year, t.month),
}


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def future_images(
    images: Sequence[ImageInfo], now: datetime, skew: timedelta = FUTURE_SKEW
) -> list[str]:
    """Ids of chunked images whose `created` lies after `now + skew` (a wrong or forged clock).

    `created` comes from a record the box wrote; ordering by it lets one future-dated image
    become "the newest" and push the real newest backup out of `keep_last`. The planner does not
    prune a box while this list is not empty (and says why).
    """
    limit = _utc(now) + skew
    return [i.id for i in images if i.kind == "chunked" and _utc(i.created) > limit]


def select_prunable(
    images: Sequence[ImageInfo],
    policy: Retention,
    protected: Set[str],
) -> list[str]:
    """Ids of the chunked images to delete, oldest first."""
    chunked = sorted(
        (i for i in images if i.kind == "chunked"), key=lambda i: (_utc(i.created), i.id)
    )
    if not chunked:
        return []
    rules = {
        "keep_last": policy.keep_last,
        "keep_daily": policy.keep_daily,
        "keep_weekly": policy.keep_weekly,
        "keep_monthly": policy.keep_monthly,
    }
    if all(n is None for n in rules.values()):
        return []
    newest_first = list(reversed(chunked))
    keep: set[str] = {newest_first[0].id} | set(protected)
    if policy.keep_last:
        keep.update(i.id for i in newest_first[: policy.keep_last])
    for rule, bucket in _BUCKETS.items():
        remaining = rules[rule]
        seen: set[tuple[int, ...]] = set()
        for image in newest_first:
            if not remaining:
                break
            key = bucket(_utc(image.created))
            if key not in seen:
                seen.add(key)
                keep.add(image.id)
                remaining -= 1
    return [i.id for i in chunked if i.id not in keep]
