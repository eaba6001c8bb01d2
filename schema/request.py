"""What the controller arms for a box (`request.json`) and what the box reports (`results/`).

The request id is a short stable hash of what defines the request (contract §3): the same inputs
always give the same id, so a request that succeeded is recognised as done on every later run,
and changing the operator's `request:` token makes a new one.
"""

import hashlib
import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, StringConstraints

from schema.base import ContractModel
from schema.types import (
    ArmableAction,
    DiskName,
    FreeSpace,
    Hostname,
    ImageId,
    ImageRef,
    IPv4,
    RequestId,
    RequestToken,
)

REQUEST_SCHEMA_VERSION: Literal[1] = 1
# The desired state's revision (contract §8): a git commit (`<sha>` or `<sha>-dirty`), or whatever
# `--revision` / TESTBOX_REVISION says (a tag, a CI pipeline id). It lands in request.json and in
# log lines, so it is one printable word: no whitespace, no control character, bounded.
Revision = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._+/:@-]{0,99}$")]
RESULT_SCHEMA_VERSION: Literal[1] = 1

if TYPE_CHECKING:
    # Only the controller arms requests from the desired state; the on-box service, which reads
    # and writes these records at every boot, does not pay for building the desired-state models.
    from schema.desired import EffectiveBox


def request_id(box: "EffectiveBox") -> str | None:
    """12 hex digits of SHA-256 over the request's defining fields; None for action `none`."""
    if box.action == "none":
        return None
    defining = {
        "box": box.name,
        "ip": box.ip,
        "action": box.action,
        "disks": box.disks,
        "image": box.image,
        "request": box.request,
    }
    # Only when not the default, so every request id made before the field existed stays.
    if box.free_space != "raw":
        defining["free_space"] = box.free_space
    canonical = json.dumps(defining, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


class Request(ContractModel):
    """`<ip>/request.json`: written by testboxctl when it arms a box; deterministic content."""

    schema_version: Literal[1] = REQUEST_SCHEMA_VERSION
    request_id: RequestId
    box: Hostname
    ip: IPv4
    action: ArmableAction
    disks: list[DiskName]
    image: ImageRef | None = None
    token: RequestToken | None = None
    max_attempts: int = Field(ge=1)
    # Which revision of the desired state armed this request (contract §8). Not part of the request
    # id: a new commit that changes nothing for a box is not a new request.
    revision: Revision | None = None
    # How a backup treats free blocks (a restore follows what the image records).
    free_space: FreeSpace = "raw"

    @classmethod
    def for_box(cls, box: "EffectiveBox", revision: str | None = None) -> "Request":
        rid = request_id(box)
        if rid is None or box.action == "none":
            raise ValueError("action none has no request")
        return cls(
            request_id=rid,
            box=box.name,
            ip=box.ip,
            action=box.action,
            disks=box.disks,
            image=box.image,
            token=box.request,
            max_attempts=box.max_attempts,
            revision=revision,
            free_space=box.free_space,
        )


Outcome = Literal["success", "failure", "rescue-ready"]


class DiskFigures(ContractModel):
    disk: DiskName
    size: int = Field(default=0, ge=0)
    bytes_read: int = Field(default=0, ge=0)
    bytes_stored: int = Field(default=0, ge=0)
    bytes_written: int = Field(default=0, ge=0)
    bytes_skipped: int = Field(default=0, ge=0)
    # Bytes no filesystem used (free_space: skip): neither read, stored nor written.
    bytes_free: int = Field(default=0, ge=0)


class Attempt(ContractModel):
    attempt: int = Field(ge=1)
    outcome: Outcome
    started: datetime
    finished: datetime
    error: str | None = None


class Result(ContractModel):
    """`<ip>/results/<request-id>.json`: the latest attempt of one request, with its history.

    `attempt` counts every attempt of this request so far; the controller stops retrying when
    the latest outcome is a failure and `attempt >= max_attempts`.
    """

    schema_version: Literal[1] = RESULT_SCHEMA_VERSION
    request_id: RequestId
    action: ArmableAction
    ip: IPv4
    hostname: str
    outcome: Outcome
    attempt: int = Field(ge=1)
    started: datetime
    finished: datetime
    disks: list[DiskFigures] = Field(default_factory=list)
    image_id: ImageId | None = None
    error: str | None = None
    # A restore that failed after its first write: the disks it left partially restored
    # (the next attempt, or a restore of another image, repairs them). Empty otherwise.
    partial_disks: list[DiskName] = Field(default_factory=list)
    service_version: str
    history: list[Attempt] = Field(default_factory=list)
