"""Power cycles (contract §7), decided purely from the box, its request state, `power.json` and now.

Safety first: a box is power-cycled only when its request is armed and its config is in place
(or written by this very plan, before the power operation runs); never when the request is done,
stalled, disarmed, blocked by a foreign config, or when `power.json` cannot be understood. Once
per request: the record on the share (`<ip>/power.json`) says which request was cycled, when,
and how many attempts the box had recorded then. The box has acted when it records more
attempts than that (or its rescue system is ready); otherwise, `retry_after` after the cycle,
the next run cycles again, up to `max_cycles`, and then only a notice remains: the box stays
armed and acts at its next reboot. A cycle that failed (BMC unreachable) is retried on the next
run without waiting, and counts towards `max_cycles` too, so a dead BMC costs a bounded number
of attempts.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from controller.core.requeststate import Decision
from schema.desired import EffectiveBox
from schema.observed import ObservedResult
from schema.power import PowerRecord, PowerTarget
from schema.schedule import duration_seconds


@dataclass(frozen=True, slots=True)
class PowerStep:
    target: PowerTarget | None = None  # a power cycle to run, with its reason
    reason: str = ""
    notice: str | None = None  # something the operator should know; nothing is done


def parse_power_record(text: str | None) -> PowerRecord | None:
    """The record, None when absent; raises ValueError (one line) when it is not a record."""
    if text is None:
        return None
    try:
        return PowerRecord.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "document"
        raise ValueError(f"not a valid power record ({where}: {first['msg']})") from None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _when(moment: datetime) -> str:
    return f"{_utc(moment):%Y-%m-%dT%H:%M:%SZ}"


def plan_power(
    box: EffectiveBox,
    rid: str | None,
    decision: Decision,
    result: ObservedResult | None,
    *,
    power_json: str | None,
    now: datetime,
) -> PowerStep:
    """The power step for one box whose config is (or will be) in place. Pure."""
    power = box.power
    if power is None or rid is None or not decision.armed:
        return PowerStep()
    try:
        record = parse_power_record(power_json)
    except ValueError as exc:
        return PowerStep(notice=f"power.json: {exc}; no power cycle until it is fixed or removed")
    attempts = result.attempt if result is not None else 0

    def cycle(number: int, reason: str) -> PowerStep:
        target = PowerTarget(
            name=box.name,
            ip=box.ip,
            mac=box.mac,
            power=power,
            cycle=number,
            attempts_seen=attempts,
        )
        return PowerStep(target=target, reason=reason)

    if record is None or record.request_id != rid:
        return cycle(
            1, f"arm: {box.action} request {rid}; box reboots into maintenance ({power.method})"
        )
    acted = attempts > record.attempts_seen or (
        result is not None and result.outcome == "rescue-ready"
    )
    if acted:
        return PowerStep()
    at = _when(record.time)
    if record.cycle >= power.max_cycles:
        if record.outcome != "cycled":
            last = f"the last one failed ({record.error or record.outcome})"
        else:
            last = f"no attempt result since the one at {at}"
        return PowerStep(
            notice=(
                f"request {rid}: {record.cycle} of {power.max_cycles} power cycles done, {last}; "
                "not cycled again: the box stays armed and acts at its next reboot"
            )
        )
    following = f"cycle {record.cycle + 1} of {power.max_cycles}"
    if record.outcome != "cycled":
        return cycle(
            record.cycle + 1,
            f"the power cycle at {at} failed ({record.error or record.outcome}): {following}",
        )
    wait = timedelta(seconds=duration_seconds(power.retry_after))
    if _utc(now) - _utc(record.time) >= wait:
        return cycle(
            record.cycle + 1,
            f"no attempt result {power.retry_after} after the power cycle at {at}: {following}",
        )
    return PowerStep()
