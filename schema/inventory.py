"""`<ip>/inventory.json`: a box's hardware as the on-box service found it (structured twin of
the seed's free-text `testbox-info.txt`).

Written by the on-box service on backup, backup-again, refresh-info (and whenever missing);
read by whoever wants to find boxes by hardware. Fields the box could not determine are None.
"""

from datetime import datetime
from typing import Literal

from pydantic import Field

from schema.base import ContractModel

INVENTORY_SCHEMA_VERSION: Literal[1] = 1


class CpuInfo(ContractModel):
    model: str | None = None
    count: int = Field(default=0, ge=0)  # logical CPUs (processor entries in /proc/cpuinfo)


class DiskInfo(ContractModel):
    name: str
    path: str
    size: int | None = Field(default=None, ge=0)
    model: str | None = None
    serial: str | None = None


class NicInfo(ContractModel):
    name: str
    mac: str | None = None


class DmiInfo(ContractModel):
    vendor: str | None = None
    product: str | None = None
    serial: str | None = None


class Inventory(ContractModel):
    schema_version: Literal[1] = INVENTORY_SCHEMA_VERSION
    ip: str
    hostname: str
    collected: datetime
    service_version: str
    cpu: CpuInfo
    memory_bytes: int | None = Field(default=None, ge=0)
    disks: list[DiskInfo] = Field(default_factory=list)
    nics: list[NicInfo] = Field(default_factory=list)
    dmi: DmiInfo = DmiInfo()
