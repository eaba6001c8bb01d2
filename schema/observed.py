"""What `testboxctl` saw on the two shares: the planner's second input, next to the desired state.

These models hold facts only (file names, contents, parsed results, image records); deciding what
they mean is the planner's job. `controller.io.observe` builds them with `model_construct` (the
values come from the filesystem and are checked there), because a lab of 10,000 boxes must be
observed in well under a second and per-field validation would dominate that.
"""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from schema.image import ImageInfo
from schema.request import Outcome


class ObservedModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ObservedConfig(ObservedModel):
    """One file in `pxelinux.cfg/` other than `default`."""

    name: str
    managed: bool
    request_id: str | None = None
    # Kept so a drifted managed config can be shown as a diff and a foreign one identified.
    content: str
    # Set when the entry is not a readable regular file (a link, a FIFO, too large): it is then
    # foreign by construction, its content is never read, and the plan names the problem.
    problem: str | None = None


class ObservedResult(ObservedModel):
    """The parts of `results/<request-id>.json` the controller acts on."""

    request_id: str
    outcome: Outcome
    attempt: int
    finished: datetime | None = None
    error: str | None = None
    image_id: str | None = None


class ObservedBox(ObservedModel):
    """One `<ip>/` directory on the backup share."""

    ip: str
    # Names of the regular files directly in the box directory (hostname files among them).
    files: frozenset[str] = frozenset()
    request_json: str | None = None
    disk_list: str | None = None
    # `power.json` as read (parsed by the power planner: a damaged one blocks power cycles only).
    power_json: str | None = None
    results: dict[str, ObservedResult] = Field(default_factory=dict)
    images: list[ImageInfo] = Field(default_factory=list)
    # Names directly in the box directory that are NOT regular files (directories, links, FIFOs):
    # a hostname file the planner wants to write must not be one of them.
    nonfiles: frozenset[str] = frozenset()
    # The controller's arm record (`armed.json`): how many times it armed which request.
    arm_request: str | None = None
    arms: int = 0
    # Things on the share that are not what they must be (a link, a FIFO, malformed JSON, a
    # record that disagrees with its name), one line each naming the path: the planner disarms
    # the box and writes nothing else for it until they are fixed.
    problems: list[str] = Field(default_factory=list)
    # Damaged or foreign entries among the box's images (a garbage commit record, a manifest
    # that disagrees with it), one line each: those images are not listed, so the planner
    # prunes nothing for the box while there are any (the damaged one may be the newest).
    image_problems: list[str] = Field(default_factory=list)
    # Temp files (`.*.tmp`) in the box directory with their mtimes: a killed run's leftovers.
    temp_files: dict[str, float] = Field(default_factory=dict)


class Observed(ObservedModel):
    tftp_root: str
    backup_root: str
    observed_at: datetime
    configs: dict[str, ObservedConfig] = Field(default_factory=dict)
    boxes: dict[str, ObservedBox] = Field(default_factory=dict)
    # Problems of the lab rather than of one box (the global log is a link, ...), one line each.
    problems: list[str] = Field(default_factory=list)
    # Temp files (`.*.tmp`) in `pxelinux.cfg/` with their mtimes.
    config_temp_files: dict[str, float] = Field(default_factory=dict)
    # SHA-256 over everything above that the planner reads; a saved plan carries it.
    fingerprint: str = ""

    def box(self, ip: str) -> ObservedBox | None:
        return self.boxes.get(ip)
