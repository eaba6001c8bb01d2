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
    # Files that exist but cannot be understood (a corrupt result): the planner leaves the box be.
    problems: list[str] = Field(default_factory=list)


class Observed(ObservedModel):
    tftp_root: str
    backup_root: str
    observed_at: datetime
    configs: dict[str, ObservedConfig] = Field(default_factory=dict)
    boxes: dict[str, ObservedBox] = Field(default_factory=dict)
    # SHA-256 over everything above that the planner reads; a saved plan carries it.
    fingerprint: str = ""

    def box(self, ip: str) -> ObservedBox | None:
        return self.boxes.get(ip)
