"""Image records (contract §4): what an image of a box is, as listed by the image store.

Owned by the image store; the controller reads these to show images and plan retention.
"""

from datetime import datetime
from typing import Literal

from pydantic import Field

from schema.base import ContractModel
from schema.types import DiskName, FreeSpace, ImageId, IPv4


class ImageDisk(ContractModel):
    disk: DiskName
    size: int = Field(ge=0)
    # Bytes of this disk's chunks as stored (compressed); 0 for legacy images where unknown.
    stored_bytes: int = Field(default=0, ge=0)


class ImageInfo(ContractModel):
    """One committed image of one box (a chunked image, or the seed's legacy gz files)."""

    id: ImageId
    box_ip: IPv4
    created: datetime
    kind: Literal["chunked", "legacy"] = "chunked"
    disks: list[ImageDisk] = Field(default_factory=list)
    # The policy the backup ran with; images made before the field existed are raw.
    free_space: FreeSpace = "raw"
