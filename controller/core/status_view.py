"""What the status page and the Prometheus metrics show, computed from a status report (pure).

The HTML template (controller/templates/status.html.j2) only lays out what this module decides:
state words and colours, human sizes and ages, whether the newest backup is overdue, and the
geometry of each box's chart of stored bytes per backup over time (inline SVG: the page needs no
JavaScript and no external asset). Keeping the decisions here keeps them testable without a
browser and keeps the template free of arithmetic.

`render_prometheus` writes the node-exporter textfile-collector format: gauges per box (state,
in sync, last success time, image count, newest image age, bytes) and for the store, so a lab's
existing monitoring can alert on a stale backup or a stalled box.
"""

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

from controller.core.requeststate import BoxState
from controller.core.status import BoxStatus, ImageSummary, StatusReport
from controller.core.store_totals import StoreTotals

STATES: tuple[BoxState, ...] = ("idle", "armed", "failed", "stalled", "done", "rescue")
STATE_WORDS: dict[str, str] = {
    "idle": "idle: nothing requested",
    "armed": "armed: waiting for the box",
    "failed": "failed: the box retries",
    "stalled": "stalled: attempt limit reached",
    "done": "done: request succeeded",
    "rescue": "rescue: rescue system armed",
}
# Colours with words next to them (never colour alone); contrast checked against white text.
STATE_COLOURS: dict[str, str] = {
    "idle": "#5f6b7a",
    "armed": "#1f5fbf",
    "failed": "#b35900",
    "stalled": "#b3261e",
    "done": "#1e7a34",
    "rescue": "#6b3fa0",
}

CHART_WIDTH = 220
CHART_HEIGHT = 56
_PAD = 6


def human_bytes(n: int) -> str:
    """1536 → '1.5 KiB' (binary units, one decimal from KiB up)."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024
        if value < 1024 or unit == "PiB":
            return f"{value:.1f} {unit}"
    return f"{n} B"  # pragma: no cover (the loop always returns)


def human_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


@dataclass(frozen=True)
class ChartDot:
    x: float
    y: float
    title: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    points: str  # the polyline's "x,y x,y ..."
    dots: list[ChartDot]
    peak: str  # the top of the y axis, in words


@dataclass(frozen=True)
class ImageView:
    id: str
    kind: str
    size: str
    stored: str
    age: str


@dataclass(frozen=True)
class BoxView:
    name: str
    ip: str
    action: str
    state: str
    state_words: str
    colour: str
    in_sync: bool
    request_id: str
    armed_revision: str
    reason: str
    last_result: str
    last_time: str
    last_error: str
    last_success: str
    images: list[ImageView]
    newest_age: str
    overdue: bool
    chart: Chart | None


@dataclass(frozen=True)
class PageView:
    title: str
    observed_at: str
    boxes: list[BoxView]
    state_counts: dict[str, int]
    state_words: dict[str, str]
    state_colours: dict[str, str]
    totals: dict[str, str]
    orphaned_boxes: list[str] = field(default_factory=list)
    foreign_configs: list[str] = field(default_factory=list)


def _chart(images: list[ImageSummary]) -> Chart | None:
    chunked = sorted((i for i in images if i.kind != "legacy"), key=lambda i: _utc(i.created))
    if not chunked:
        return None
    times = [_utc(i.created).timestamp() for i in chunked]
    peak = max(i.stored_bytes for i in chunked)
    span = times[-1] - times[0]
    inner_w, inner_h = CHART_WIDTH - 2 * _PAD, CHART_HEIGHT - 2 * _PAD
    dots = []
    for image, t in zip(chunked, times, strict=True):
        x = _PAD + (inner_w * (t - times[0]) / span if span else inner_w / 2)
        y = _PAD + inner_h * (1 - (image.stored_bytes / peak if peak else 0))
        title = (
            f"{image.id}: {human_bytes(image.stored_bytes)} stored, {image.created:%Y-%m-%d %H:%M}"
        )
        dots.append(ChartDot(round(x, 1), round(y, 1), title))
    points = " ".join(f"{d.x},{d.y}" for d in dots)
    return Chart(CHART_WIDTH, CHART_HEIGHT, points, dots, human_bytes(peak))


def backup_overdue(box: BoxStatus) -> bool | None:
    """Is the newest backup older than the box's schedule (or missing)? None: no schedule.

    Age against `backup_every`, not `next_backup_due`: outside its window a box's next due
    moment is the window's start, in the future, while its newest backup is already too old.
    """
    if box.backup_every_seconds is None:
        return None
    age = box.newest_backup_age_seconds
    return age is None or age > box.backup_every_seconds


def _box_view(box: BoxStatus, now: datetime) -> BoxView:
    last = box.last_result
    return BoxView(
        name=box.name,
        ip=box.ip,
        action=box.action,
        state=box.state,
        state_words=STATE_WORDS[box.state],
        colour=STATE_COLOURS[box.state],
        in_sync=box.in_sync,
        request_id=box.request_id or "-",
        armed_revision=(box.armed_revision or "-")[:12],
        reason=box.reason,
        last_result="-" if last is None else f"{last.outcome} (attempt {last.attempt})",
        last_time="-"
        if last is None or last.finished is None
        else f"{_utc(last.finished):%Y-%m-%d %H:%M}Z",
        last_error=(last.error or "") if last is not None else "",
        last_success="-"
        if box.last_success is None
        else f"{_utc(box.last_success):%Y-%m-%d %H:%M}Z",
        images=[
            ImageView(
                id=i.id,
                kind=i.kind,
                size=human_bytes(i.logical_bytes),
                stored=human_bytes(i.stored_bytes) if i.kind != "legacy" else "-",
                age=human_age((now - _utc(i.created)).total_seconds()),
            )
            for i in reversed(box.images)  # newest first
        ],
        newest_age=human_age(box.newest_backup_age_seconds),
        overdue=backup_overdue(box) is True,
        chart=_chart(box.images),
    )


def page_view(
    report: StatusReport, totals: StoreTotals, title: str = "testboxctl status"
) -> PageView:
    now = _utc(report.observed_at)
    counts: dict[str, int] = {state: 0 for state in STATES}
    for box in report.boxes:
        counts[box.state] += 1
    return PageView(
        title=title,
        observed_at=f"{now:%Y-%m-%d %H:%M:%S}Z",
        boxes=[_box_view(b, now) for b in report.boxes],
        state_counts=counts,
        state_words=STATE_WORDS,
        state_colours=STATE_COLOURS,
        totals={
            "boxes": str(len(report.boxes)),
            "images": str(totals.images + totals.legacy_images),
            "logical": human_bytes(totals.logical_bytes),
            "referenced": human_bytes(totals.referenced_bytes),
            "stored": human_bytes(totals.stored_bytes),
            "chunks": str(totals.chunks),
            "dedup": ratio(totals.dedup_ratio),
            "compression": ratio(totals.compression_ratio),
            "total_ratio": ratio(totals.total_ratio),
        },
        orphaned_boxes=report.orphaned_boxes,
        foreign_configs=report.foreign_configs,
    )


def _label(value: str) -> str:
    """A Prometheus label value: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isfinite(value) and value == int(value):
        return str(int(value))
    return repr(float(value))


_HELP = {
    "testbox_box_state": "1 for the state the box is in, else 0.",
    "testbox_box_in_sync": "1 when the shares match the desired state for the box, else 0.",
    "testbox_box_last_success_timestamp_seconds": "When the newest successful request finished.",
    "testbox_box_images": "Committed images of the box.",
    "testbox_box_newest_image_age_seconds": "Age of the box's newest image.",
    "testbox_box_stored_bytes": "Compressed bytes of the box's images (shared chunks per image).",
    "testbox_box_backup_overdue": "1 when the newest backup is older than the box's schedule.",
    "testbox_store_logical_bytes": "Sum of disk sizes over all chunked images.",
    "testbox_store_referenced_bytes": "Compressed bytes the images reference (before dedup).",
    "testbox_store_stored_bytes": "Bytes of the chunk files in the store, each counted once.",
    "testbox_store_chunks": "Chunk files in the store.",
    "testbox_store_images": "Images in the store (chunked and legacy).",
    "testbox_status_observed_timestamp_seconds": "When the shares were observed (Unix time).",
}


def render_prometheus(report: StatusReport, totals: StoreTotals) -> str:
    """The textfile-collector document (text exposition format 0.0.4), ending with a newline."""
    samples: dict[str, list[str]] = {name: [] for name in _HELP}
    now = _utc(report.observed_at)

    def add(name: str, value: float, **labels: str) -> None:
        text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
        samples[name].append(
            f"{name}{{{text}}} {_number(value)}" if text else f"{name} {_number(value)}"
        )

    for box in report.boxes:
        who = {"box": box.name, "ip": box.ip}
        for state in STATES:
            add("testbox_box_state", 1 if box.state == state else 0, **who, state=state)
        add("testbox_box_in_sync", 1 if box.in_sync else 0, **who)
        if box.last_success is not None:
            add(
                "testbox_box_last_success_timestamp_seconds",
                _utc(box.last_success).timestamp(),
                **who,
            )
        add("testbox_box_images", len(box.images), **who)
        if box.newest_backup_age_seconds is not None:
            add("testbox_box_newest_image_age_seconds", box.newest_backup_age_seconds, **who)
        add("testbox_box_stored_bytes", sum(i.stored_bytes for i in box.images), **who)
        overdue = backup_overdue(box)
        if overdue is not None:
            add("testbox_box_backup_overdue", 1 if overdue else 0, **who)
    add("testbox_store_logical_bytes", totals.logical_bytes)
    add("testbox_store_referenced_bytes", totals.referenced_bytes)
    add("testbox_store_stored_bytes", totals.stored_bytes)
    add("testbox_store_chunks", totals.chunks)
    add("testbox_store_images", totals.images + totals.legacy_images)
    add("testbox_status_observed_timestamp_seconds", now.timestamp())
    lines: list[str] = []
    for name, help_text in _HELP.items():
        if not samples[name]:
            continue
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", *samples[name]]
    return "\n".join(lines) + "\n"
