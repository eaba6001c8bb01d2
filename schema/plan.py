"""A plan as data: what `testboxctl` will change on the shares, and why (docs/plan-format.md).

The planner produces it, the renderers show it (human, `--json`), `--out PLAN` saves it and
`testboxctl apply PLAN` executes it. Its JSON form is versioned (`format_version`) and stable:
field order is the order below, operations are in the order apply runs them.
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)

from schema.power import PowerTarget
from schema.request import Revision

PLAN_FORMAT_VERSION: Literal[1] = 1

OperationKind = Literal[
    "remove-config",
    "create-box-dir",
    "write-hostname",
    "write-request",
    "write-disk-list",
    "record-arm",
    "write-config",
    "prune-image",
    # Runs last, after every file is in place (contract §7); carries `power`.
    "power-cycle",
]
NoticeKind = Literal["foreign-config", "orphaned-box", "blocked", "problem", "power"]
Share = Literal["tftp", "backup"]


class PlanModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Operation(PlanModel):
    """One change. `path` is relative to the share's root; `content` is the full new content."""

    kind: OperationKind
    share: Share
    path: str
    reason: str
    box: str | None = None
    ip: str | None = None
    request_id: str | None = None
    content: str | None = None
    # What is there now (a drifted config, an outdated request.json): shown as a diff.
    old_content: str | None = None
    image_id: str | None = None
    # power-cycle only: the box's power config and which cycle of the request this is.
    power: PowerTarget | None = None

    @model_serializer(mode="wrap")
    def _omit_no_power(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """`power` appears only on power-cycle operations: plans without power stay as they were."""
        data: dict[str, Any] = handler(self)
        if data.get("power", 0) is None:
            del data["power"]
        return data

    @field_validator("path")
    @classmethod
    def _inside_the_share(cls, path: str) -> str:
        """A saved plan is an input file: its paths may not leave the share they name."""
        segments = path.split("/")
        if path.startswith("/") or any(s in ("", ".", "..") for s in segments):
            raise ValueError(f"path must be relative and stay inside the share: {path!r}")
        if any(ord(c) < 32 or ord(c) == 127 for c in path):
            raise ValueError(f"control character in path {path!r}")
        return path


class Notice(PlanModel):
    """Something the operator should know that the plan does not change."""

    kind: NoticeKind
    message: str
    box: str | None = None
    ip: str | None = None
    path: str | None = None


class Plan(PlanModel):
    format_version: Literal[1] = PLAN_FORMAT_VERSION
    tftp_root: str
    backup_root: str
    observed_at: datetime
    fingerprint: str
    operations: list[Operation] = Field(default_factory=list)
    notices: list[Notice] = Field(default_factory=list)
    # The desired state's revision the plan was made from (contract §8); None when unknown.
    revision: Revision | None = None

    @property
    def empty(self) -> bool:
        """No change to make (notices do not count: they are never acted on)."""
        return not self.operations
