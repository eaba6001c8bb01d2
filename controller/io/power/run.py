"""Runs a plan's `power-cycle` operations: last, in parallel with a bound, each recorded.

A lab of 300 boxes must not take 300 times the BMC latency, so cycles run in a thread pool
(`workers`, default 16: BMCs are slow to answer, not busy; the bound keeps a run from opening
hundreds of sessions at once). Each cycle:
1. checks that the box's managed config for this request is in place (it was written before,
   or already there); if not (a conflict skipped it, a box finished meanwhile) the box is not
   cycled: never power-cycle a box that is not armed;
2. runs the driver of its method;
3. writes `<ip>/power.json` atomically (onbox.shareio) with the outcome, whatever it is;
4. logs one line in the global log (and a command's output in the box's log).
A failure of one box never stops the others; the failures come back for the CLI to report
(one line per box, exit 1 after everything else was applied).
"""

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from controller.errors import ControllerError
from controller.io.power import CycleResult, PowerDriver, PowerError
from controller.io.power.command import CommandDriver
from controller.io.power.credentials import CredentialSource
from controller.io.power.ipmi import IpmiDriver
from onbox.errors import OnboxError
from onbox.shareio import Share
from schema.layout import (
    BOX_LOG,
    GLOBAL_LOG,
    POWER_FILE,
    PXE_CFG_DIR,
    hex_ip,
    log_line,
    parse_managed_header,
)
from schema.plan import Operation
from schema.power import PowerOutcome, PowerRecord, PowerTarget

DEFAULT_WORKERS = 16


def make_driver(target: PowerTarget, credentials: CredentialSource) -> PowerDriver:
    power = target.power
    if power.method == "command":
        return CommandDriver()
    if power.credentials is None:
        raise PowerError(f"{target.name} ({target.ip}): method {power.method} names no credentials")
    found = credentials.get(power.credentials)
    if power.method == "redfish":
        # Imported here: httpx costs ~0.15 s of start-up, and every reconcile --dry-run
        # imports this module but only a run that power-cycles over Redfish needs it.
        from controller.io.power.redfish import RedfishDriver

        return RedfishDriver(found)
    if power.method == "ipmi":
        return IpmiDriver(found)
    raise PowerError(f"{target.name} ({target.ip}): power method {power.method} cannot cycle")


def needed_credentials(operations: list[Operation]) -> list[str]:
    """Credential names the plan's power cycles will use."""
    names = {op.power.power.credentials for op in operations if op.power is not None}
    return sorted(n for n in names if n is not None)


@dataclass
class PowerReport:
    cycled: list[Operation] = field(default_factory=list)
    # Not cycled: the box's config was not in place for this request when apply got there.
    skipped: list[Operation] = field(default_factory=list)
    # One line each, naming the box.
    failures: list[str] = field(default_factory=list)


Outcome = Literal["cycled", "skipped", "failed"]


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Runner:
    def __init__(
        self, tftp: Path, backup: Path, credentials: CredentialSource, clock: Callable[[], datetime]
    ) -> None:
        self.tftp, self.backup = tftp, backup
        self.credentials = credentials
        self.clock = clock

    def _config_in_place(self, op: Operation, target: PowerTarget) -> bool:
        with Share(self.tftp) as tftp:
            text = tftp.try_read_text(f"{PXE_CFG_DIR}/{hex_ip(target.ip)}")
        if text is None:
            return False
        managed, rid = parse_managed_header(text)
        return managed and rid == op.request_id

    def _log(self, backup: Share, rel: str, ip: str, level: str, text: str) -> None:
        backup.append(rel, log_line(_stamp(self.clock()), ip, level, text))

    def run(self, op: Operation) -> tuple[Outcome, str | None]:
        target = op.power
        if target is None or op.request_id is None:
            return "failed", f"{op.box or op.ip}: power-cycle operation without a target"
        try:
            if not self._config_in_place(op, target):
                return "skipped", None
        except OnboxError as exc:
            return "failed", f"{target.name} ({target.ip}): cannot check its config: {exc.message}"
        method = target.power.method
        result: CycleResult | None = None
        error: PowerError | None = None
        try:
            result = make_driver(target, self.credentials).power_cycle(target, op.request_id)
        except PowerError as exc:
            error = exc
        except ControllerError as exc:
            error = PowerError(f"{target.name} ({target.ip}): {exc.message}")
        outcome: PowerOutcome = "cycled"
        if error is not None:
            outcome = "unreachable" if error.unreachable else "failed"
        now = self.clock()
        record = PowerRecord(
            request_id=op.request_id,
            method=method,
            cycle=target.cycle,
            time=now,
            outcome=outcome,
            attempts_seen=target.attempts_seen,
            power_state=result.power_state if result else None,
            action=result.action if result else None,
            error=error.message if error else None,
        )
        text = json.dumps(record.model_dump(mode="json"), indent=2) + "\n"
        try:
            with Share(self.backup) as backup:
                backup.write_atomic(f"{target.ip}/{POWER_FILE}", text)
                if result is not None:
                    for line in result.output:
                        self._log(backup, f"{target.ip}/{BOX_LOG}", target.ip, "info", line)
                    what = f"{result.action}, was {result.power_state or 'unknown'}"
                    self._log(
                        backup,
                        GLOBAL_LOG,
                        target.ip,
                        "info",
                        f"testboxctl: power-cycled {target.name} via {method} ({what}; "
                        f"cycle {target.cycle} of {target.power.max_cycles}; {op.reason})",
                    )
                else:
                    self._log(backup, GLOBAL_LOG, target.ip, "error", f"testboxctl: {error}")
        except OnboxError as exc:
            return (
                "failed",
                f"{target.name} ({target.ip}): cannot record the power cycle: {exc.message}",
            )
        if error is not None:
            return "failed", error.message
        return "cycled", None


def run_power_cycles(
    operations: list[Operation],
    tftp: Path,
    backup: Path,
    credentials: CredentialSource,
    *,
    workers: int = DEFAULT_WORKERS,
    clock: Callable[[], datetime] | None = None,
) -> PowerReport:
    """Cycle every box of `operations` (power-cycle operations), at most `workers` at a time."""
    report = PowerReport()
    if not operations:
        return report
    runner = _Runner(tftp, backup, credentials, clock or (lambda: datetime.now(UTC)))
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(operations)))) as pool:
        outcomes = list(pool.map(runner.run, operations))
    for op, (outcome, line) in zip(operations, outcomes, strict=True):
        if outcome == "cycled":
            report.cycled.append(op)
        elif outcome == "skipped":
            report.skipped.append(op)
        else:
            report.failures.append(line or f"{op.box}: power cycle failed")
    return report
