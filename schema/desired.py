"""The desired state operators commit to git (contract §6).

`DesiredState` is what `testboxctl` converges the shares to. Per-box settings fall back to
`site.defaults`; `EffectiveBox` is that resolution, computed once so the planner, the request
id and the rendered files all see the same values.
"""

from collections import Counter
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, model_validator

from schema.base import ContractModel
from schema.layout import box_name_collision
from schema.power import PowerConfig
from schema.schedule import Schedule
from schema.types import (
    Action,
    DiskName,
    ExportPath,
    FreeSpace,
    Hostname,
    ImageRef,
    IPv4,
    KernelArg,
    MacAddress,
    NetDevice,
    RequestToken,
    ServerAddress,
    SharePath,
    TftpPath,
)

# The box's firmware decides which SYSLINUX variant DHCP hands it (pxelinux.0 or syslinux.efi) and
# which module directory its config names (contract §2); both look up the same pxelinux.cfg/ names.
Firmware = Literal["bios", "uefi"]


class Retention(ContractModel):
    """Images to keep per box; restic-like: each rule keeps its own set, the union stays."""

    keep_last: int | None = Field(default=None, ge=1)
    keep_daily: int | None = Field(default=None, ge=1)
    keep_weekly: int | None = Field(default=None, ge=1)
    keep_monthly: int | None = Field(default=None, ge=1)


class Network(ContractModel):
    """How the maintenance kernel configures its NIC: the `ip=` kernel argument."""

    mode: Literal["static", "dhcp"] = "dhcp"
    gateway: IPv4 | None = None
    netmask: IPv4 | None = None
    device: NetDevice | None = None

    @model_validator(mode="after")
    def _static_needs_addresses(self) -> Self:
        if self.mode == "static":
            missing = [f for f in ("gateway", "netmask", "device") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"static network needs {', '.join(missing)}")
        return self


class Maintenance(ContractModel):
    """The maintenance Linux the box-specific PXE config boots."""

    kernel: TftpPath
    initrd: TftpPath
    nfs_server: ServerAddress
    nfsroot: ExportPath
    network: Network = Network()
    extra_args: list[KernelArg] = Field(default_factory=list)


class Defaults(ContractModel):
    disks: list[DiskName] = Field(default_factory=lambda: ["sda"], min_length=1)
    retention: Retention = Retention(keep_last=3)
    max_attempts: int = Field(default=3, ge=1, le=100)
    firmware: Firmware = "bios"
    # raw: byte-exact, OS independent; skip: store only blocks a known filesystem uses.
    free_space: FreeSpace = "raw"
    schedule: Schedule | None = None
    power: PowerConfig | None = None


class Site(ContractModel):
    tftp_root: SharePath
    backup_root: SharePath
    maintenance: Maintenance
    defaults: Defaults = Defaults()


def _box_name(value: str) -> str:
    problem = box_name_collision(value)
    if problem is not None:
        raise ValueError(f"box name {problem}")
    return value


# A box's name is also the name of its hostname file in `<ip>/` on the backup share.
BoxName = Annotated[Hostname, AfterValidator(_box_name)]


class Box(ContractModel):
    name: BoxName
    ip: IPv4
    mac: MacAddress | None = None
    action: Action = "none"
    disks: list[DiskName] | None = Field(default=None, min_length=1)
    # Restore source: an image id, or "latest" (the default for restore).
    image: ImageRef | None = None
    # Changing the token re-runs the same action (a date, a ticket number).
    request: RequestToken | None = None
    retention: Retention | None = None
    max_attempts: int | None = Field(default=None, ge=1, le=100)
    firmware: Firmware | None = None
    free_space: FreeSpace | None = None
    # Unset: the defaults' schedule; `schedule: null`: no schedule for this box.
    schedule: Schedule | None = None
    power: PowerConfig | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.image is not None and self.action != "restore":
            raise ValueError("image: only applies to action restore")
        if self.disks is not None and len(set(self.disks)) != len(self.disks):
            raise ValueError("disks: listed twice")
        return self


class EffectiveBox(ContractModel):
    """A box with the site defaults filled in."""

    name: BoxName
    ip: IPv4
    mac: MacAddress | None
    action: Action
    disks: list[DiskName]
    image: ImageRef | None
    request: RequestToken | None
    retention: Retention
    max_attempts: int
    firmware: Firmware = "bios"
    free_space: FreeSpace = "raw"
    schedule: Schedule | None = None
    # None: no power control (method none); the box acts at its next reboot.
    power: PowerConfig | None = None


class DesiredState(ContractModel):
    site: Site
    boxes: list[Box] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        for field in ("name", "ip", "mac"):
            values = [getattr(b, field) for b in self.boxes if getattr(b, field) is not None]
            dups = sorted(v for v, n in Counter(values).items() if n > 1)
            if dups:
                raise ValueError(f"boxes: duplicate {field}: {', '.join(dups)}")
        return self

    def effective(self, box: Box) -> EffectiveBox:
        d = self.site.defaults
        return EffectiveBox(
            name=box.name,
            ip=box.ip,
            mac=box.mac,
            action=box.action,
            disks=list(box.disks or d.disks),
            image=box.image or ("latest" if box.action == "restore" else None),
            request=box.request,
            retention=box.retention or d.retention,
            max_attempts=box.max_attempts or d.max_attempts,
            firmware=box.firmware or d.firmware,
            free_space=box.free_space or d.free_space,
            schedule=box.schedule if "schedule" in box.model_fields_set else d.schedule,
            power=_power(box.power if box.power is not None else d.power),
        )

    def effective_boxes(self) -> list[EffectiveBox]:
        return [self.effective(b) for b in self.boxes]


def _power(config: PowerConfig | None) -> PowerConfig | None:
    return None if config is None or config.method == "none" else config
