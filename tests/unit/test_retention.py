"""Retention: restic-like rules, and the guarantees the controller relies on."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.core.retention import select_prunable
from schema.desired import Retention
from schema.image import ImageInfo

IP = "10.0.0.5"
NOW = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)


def img(created: datetime, kind: str = "chunked") -> ImageInfo:
    iid = "legacy" if kind == "legacy" else f"{created:%Y%m%dT%H%M%SZ}-000000"
    return ImageInfo(id=iid, box_ip=IP, created=created, kind=kind)  # type: ignore[arg-type]


def hours_ago(*hours: float) -> list[ImageInfo]:
    return [img(NOW - timedelta(hours=h)) for h in hours]


def kept(
    images: list[ImageInfo], policy: Retention, protected: frozenset[str] = frozenset()
) -> list[datetime]:
    gone = set(select_prunable(images, policy, protected))
    return sorted(i.created for i in images if i.id not in gone)


@pytest.mark.parametrize(
    ("policy", "ages_h", "kept_ages_h"),
    [
        (Retention(keep_last=2), [1, 2, 3, 4], [1, 2]),
        (Retention(keep_last=10), [1, 2, 3], [1, 2, 3]),
        # four images a day apart, plus two on the newest day: newest per day for 3 days
        (Retention(keep_daily=3), [1, 2, 25, 49, 73], [1, 25, 49]),
        (Retention(keep_last=1, keep_daily=2), [1, 2, 25, 49], [1, 25]),
        (Retention(keep_weekly=2), [1, 24 * 7 + 1, 24 * 7 + 2, 24 * 14 + 1], [1, 24 * 7 + 1]),
        (Retention(keep_monthly=2), [1, 24 * 30, 24 * 31, 24 * 62], [1, 24 * 30]),
        (Retention(), [1, 2, 3], [1, 2, 3]),
    ],
)
def test_rules(policy: Retention, ages_h: list[float], kept_ages_h: list[float]) -> None:
    images = hours_ago(*ages_h)
    assert kept(images, policy) == sorted(NOW - timedelta(hours=h) for h in kept_ages_h)


def test_protected_and_legacy_never_pruned() -> None:
    images = [*hours_ago(1, 2, 3), img(NOW - timedelta(days=900), "legacy")]
    oldest = images[2].id
    gone = select_prunable(images, Retention(keep_last=1), {oldest})
    assert gone == [images[1].id]


@given(
    ages=st.lists(
        st.integers(min_value=0, max_value=24 * 400), min_size=1, max_size=30, unique=True
    ),
    last=st.none() | st.integers(1, 5),
    daily=st.none() | st.integers(1, 5),
    weekly=st.none() | st.integers(1, 5),
)
def test_newest_is_always_kept(
    ages: list[int], last: int | None, daily: int | None, weekly: int | None
) -> None:
    images = hours_ago(*ages)
    policy = Retention(keep_last=last, keep_daily=daily, keep_weekly=weekly)
    gone = select_prunable(images, policy, frozenset())
    newest = max(images, key=lambda i: i.created)
    assert newest.id not in gone
    assert len(gone) == len(set(gone))
    if last is not None:
        assert len(images) - len(gone) >= min(last, len(images))
