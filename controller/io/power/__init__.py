"""Power control drivers (contract §7): make an armed box reboot into its request.

One small interface, `PowerDriver`, and one module per method (`redfish`, `ipmi`, `command`),
chosen by `power.method`. Drivers decide nothing: the pure planner (controller.core.power_plan)
says which box to cycle and why; `controller.io.power.run` runs the cycles in parallel, records
them in `<ip>/power.json` and logs them. A driver raises `PowerError` with one line naming the
box and the BMC when it cannot do its job.
"""

from dataclasses import dataclass, field
from typing import Literal, Protocol

from controller.errors import ControllerError
from schema.power import PowerTarget

PowerState = Literal["on", "off"]


class PowerError(ControllerError):
    """A power cycle failed. `unreachable`: the BMC (or command) could not be reached at all."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


@dataclass(frozen=True)
class CycleResult:
    """What a driver did: the power state it found and the action it took."""

    power_state: PowerState | None
    action: Literal["reset", "on", "command"]
    # Output worth keeping in the box's log (a command's stdout/stderr), one line per entry.
    output: list[str] = field(default_factory=list)


class PowerDriver(Protocol):
    """Power-cycle a box into its armed request; tell its power state."""

    def power_cycle(self, box: PowerTarget, request: str) -> CycleResult:
        """One-time network boot, then reset (or power on when off)."""
        ...

    def state(self, box: PowerTarget) -> PowerState | None:
        """The system's power state, None when the method cannot tell."""
        ...
