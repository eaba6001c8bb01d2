"""Power control (contract §7): how testboxctl makes an armed box reboot into its request.

`PowerConfig` is the `power:` key of a box or of `site.defaults`. It names a method and where
the BMC is, never a secret: `credentials: NAME` is looked up at run time (environment or
`--credentials FILE`), and a `username`/`password` key in the desired file is an error.
`PowerRecord` is `<ip>/power.json` on the backup share: what the last power cycle of a request
did, so that the next run cycles only when the box did not act (`retry_after`, `max_cycles`).
`PowerTarget` is what a `power-cycle` operation of a plan carries: everything apply needs to
reach the box, so `apply PLAN` works without the desired file.
"""

import re
import string
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, Field, StringConstraints, TypeAdapter, model_validator

from schema.base import ContractModel
from schema.schedule import Duration
from schema.types import Hostname, IPv4, MacAddress, RequestId, ServerAddress

POWER_SCHEMA_VERSION: Literal[1] = 1
PowerMethod = Literal["none", "redfish", "ipmi", "command"]
PLACEHOLDERS = ("name", "ip", "mac", "hexip")

CredentialName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")]
_URL = re.compile(r"https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?/?")


def _redfish_system(value: str) -> str:
    if not re.fullmatch(r"/redfish/v1/Systems/[A-Za-z0-9._-]+", value):
        raise ValueError(f"{value!r} is not a Redfish system path like /redfish/v1/Systems/1")
    return value


def _argv_item(value: str) -> str:
    """One argv element: no control characters, only the known `{placeholders}`."""
    if not value or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("empty argument or control character in command")
    try:
        fields = [f for _, f, spec, conv in string.Formatter().parse(value) if f is not None]
    except ValueError as exc:
        raise ValueError(f"{value!r}: bad placeholder ({exc}); use {{{{ }}}} for a brace") from None
    unknown = sorted({f for f in fields if f not in PLACEHOLDERS})
    if unknown:
        known = " ".join(f"{{{p}}}" for p in PLACEHOLDERS)
        raise ValueError(f"{value!r}: unknown placeholder {unknown[0]!r} (known: {known})")
    return value


ArgvItem = Annotated[str, AfterValidator(_argv_item)]


class PowerConfig(ContractModel):
    """`power:` of a box or of the site defaults. Replaces the defaults' block as a whole."""

    method: PowerMethod = "none"
    # redfish: an http(s) URL of the BMC; ipmi: a host name or IPv4 address.
    address: str | None = None
    # Redfish system resource; default: the first member of /redfish/v1/Systems.
    system: Annotated[str, AfterValidator(_redfish_system)] | None = None
    # ipmi: the BMC's UDP port when it is not 623.
    port: int | None = Field(default=None, ge=1, le=65535)
    credentials: CredentialName | None = None
    command: list[ArgvItem] | None = Field(default=None, min_length=1)
    # TLS verification is on; `verify_tls: false` is the per-box escape for self-signed BMCs.
    verify_tls: bool = True
    # Per BMC request (redfish, ipmi) or for the whole command.
    timeout: Duration = "30s"
    retry_after: Duration = "30m"
    max_cycles: int = Field(default=3, ge=1, le=20)

    @model_validator(mode="before")
    @classmethod
    def _no_secrets(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("password", "username"):
                if key in data:
                    raise ValueError(
                        f"{key}: credentials never appear in the desired file; name them with "
                        "`credentials: NAME` (looked up in the environment or --credentials FILE)"
                    )
        return data

    @model_validator(mode="after")
    def _complete(self) -> Self:
        method = self.method
        if method in ("redfish", "ipmi"):
            if self.address is None:
                raise ValueError(f"address: required for method {method}")
            if self.credentials is None:
                raise ValueError(f"credentials: required for method {method}")
            if self.command is not None:
                raise ValueError(f"command: only applies to method command, not {method}")
        if method == "redfish" and self.address is not None and not _URL.fullmatch(self.address):
            raise ValueError(f"address: {self.address!r} is not an https:// (or http://) URL")
        if method == "ipmi" and self.address is not None:
            try:
                _ipmi_address(self.address)
            except ValueError as exc:
                raise ValueError(f"address: {exc}") from None
        if method == "command":
            if self.command is None:
                raise ValueError("command: required for method command (an argv list)")
            if self.address is not None or self.credentials is not None:
                raise ValueError("address: method command takes only command (and timeout)")
        if self.port is not None and method != "ipmi":
            raise ValueError("port: only applies to method ipmi (put a Redfish port in the URL)")
        if self.system is not None and method != "redfish":
            raise ValueError("system: only applies to method redfish")
        return self


_SERVER: TypeAdapter[str] = TypeAdapter(ServerAddress)


def _ipmi_address(value: str) -> str:
    return _SERVER.validate_python(value)


class PowerTarget(ContractModel):
    """What a plan's `power-cycle` operation carries: the box, its power config, which cycle."""

    name: Hostname
    ip: IPv4
    mac: MacAddress | None = None
    power: PowerConfig
    cycle: int = Field(ge=1)
    # Attempts the box had recorded for the request when it was cycled (0: none yet). A later
    # result with more attempts means the box acted on its request.
    attempts_seen: int = Field(ge=0)


PowerOutcome = Literal["cycled", "unreachable", "failed"]


class PowerRecord(ContractModel):
    """`<ip>/power.json`: the last power cycle of the box (written atomically by apply)."""

    schema_version: Literal[1] = POWER_SCHEMA_VERSION
    request_id: RequestId
    method: PowerMethod
    cycle: int = Field(ge=1)
    time: datetime
    outcome: PowerOutcome
    attempts_seen: int = Field(ge=0)
    # The system's power state before the cycle ("on", "off"; None when unknown).
    power_state: Literal["on", "off"] | None = None
    # What was done: "reset", "on" (the system was off) or "command".
    action: Literal["reset", "on", "command"] | None = None
    error: str | None = None
