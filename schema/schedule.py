"""Schedules (contract §3): periodic backups without anyone editing the desired file.

Durations are `<integer><unit>` with a unit of `s m h d w`; a window is `"HH:MM-HH:MM"` in UTC
(it may wrap past midnight: `"22:00-02:00"`). Both are validated here, at load time, so that a
typo is a `file:line` error and the pure planner only ever sees well-formed values. The helpers
below are pure functions of their arguments (no clock), shared by the planner and `status`.
"""

import re
from datetime import datetime, time, timedelta
from typing import Annotated

from pydantic import AfterValidator

from schema.base import ContractModel

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"([1-9][0-9]{0,8})([smhdw])")
_WINDOW = re.compile(r"([0-9]{2}):([0-9]{2})-([0-9]{2}):([0-9]{2})")


def duration_seconds(value: str) -> int:
    """`"30m"` → 1800. Raises ValueError naming the accepted form."""
    match = _DURATION.fullmatch(value)
    if match is None:
        raise ValueError(
            f"{value!r} is not a duration: <integer><unit> with unit s, m, h, d or w (e.g. 30m, 7d)"
        )
    return int(match.group(1)) * _UNITS[match.group(2)]


def _duration(value: str) -> str:
    duration_seconds(value)
    return value


def window_times(value: str) -> tuple[time, time]:
    """`"01:00-05:00"` → (01:00, 05:00). Raises ValueError naming the accepted form."""
    match = _WINDOW.fullmatch(value)
    bad = ValueError(f'{value!r} is not a window: "HH:MM-HH:MM" in UTC (e.g. "01:00-05:00")')
    if match is None:
        raise bad
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise bad
    if (h1, m1) == (h2, m2):
        raise ValueError(f"{value!r}: the window is empty (start equals end)")
    return time(h1, m1), time(h2, m2)


def _window(value: str) -> str:
    window_times(value)
    return value


Duration = Annotated[str, AfterValidator(_duration)]
Window = Annotated[str, AfterValidator(_window)]


class Schedule(ContractModel):
    """`schedule: {backup_every: 7d, window: "01:00-05:00"}` (site defaults or per box)."""

    backup_every: Duration
    window: Window | None = None


def in_window(window: str | None, moment: datetime) -> bool:
    """Whether `moment` (UTC) lies inside the window; no window means always."""
    if window is None:
        return True
    start, end = window_times(window)
    now = moment.time().replace(tzinfo=None)
    if start < end:
        return start <= now < end
    return now >= start or now < end  # wraps past midnight


def next_window_start(window: str, moment: datetime) -> datetime:
    """The first moment at or after `moment` that lies inside the window."""
    if in_window(window, moment):
        return moment
    start, _ = window_times(window)
    candidate = moment.replace(hour=start.hour, minute=start.minute, second=0, microsecond=0)
    return candidate if candidate > moment else candidate + timedelta(days=1)
