"""IPMI power driver: Debian's `ipmitool -I lanplus`, `chassis bootdev pxe`, then `power reset`
(or `power on` when the chassis is off).

The password goes through the environment (`-E` reads `IPMI_PASSWORD`), never the command line,
where any user of the machine could read it in `ps`. Each call has the box's `timeout`; ipmitool's
own retries (`-R`, `-N`) cover lost UDP packets.
"""

import os
import subprocess
from typing import Literal

from controller.io.power import CycleResult, PowerError, PowerState
from controller.io.power.credentials import Credentials
from schema.power import PowerTarget
from schema.schedule import duration_seconds

IPMITOOL = "ipmitool"


class IpmiDriver:
    def __init__(self, credentials: Credentials, *, tool: str = IPMITOOL) -> None:
        self.credentials = credentials
        self.tool = tool

    def _argv(self, box: PowerTarget, *command: str) -> list[str]:
        argv = [self.tool, "-I", "lanplus", "-H", box.power.address or "", "-U"]
        argv += [self.credentials.username, "-E", "-R", "3", "-N", "2"]
        if box.power.port is not None:
            argv += ["-p", str(box.power.port)]
        return [*argv, *command]

    def _run(self, box: PowerTarget, *command: str) -> str:
        where = f"{box.name} ({box.ip}): BMC {box.power.address}"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "IPMI_PASSWORD": self.credentials.password,
        }
        try:
            done = subprocess.run(
                self._argv(box, *command),
                check=False,
                capture_output=True,
                text=True,
                errors="replace",
                stdin=subprocess.DEVNULL,
                env=env,
                timeout=duration_seconds(box.power.timeout),
            )
        except FileNotFoundError:
            raise PowerError(f"{where}: {self.tool} is not installed") from None
        except subprocess.TimeoutExpired:
            raise PowerError(
                f"{where}: unreachable (ipmitool timed out)", unreachable=True
            ) from None
        if done.returncode != 0:
            message = (
                " ".join((done.stderr or done.stdout).split())[:200] or f"exit {done.returncode}"
            )
            unreachable = "session" in message.lower() or "unable to establish" in message.lower()
            raise PowerError(
                f"{where}: {'unreachable: ' if unreachable else ''}ipmitool {' '.join(command)}: "
                f"{message}",
                unreachable=unreachable,
            )
        return done.stdout

    def state(self, box: PowerTarget) -> PowerState | None:
        out = self._run(box, "chassis", "power", "status").lower()
        if out.strip().endswith(" on"):
            return "on"
        if out.strip().endswith(" off"):
            return "off"
        return None

    def power_cycle(self, box: PowerTarget, request: str) -> CycleResult:
        self._run(box, "chassis", "bootdev", "pxe")
        state = self.state(box)
        kind: Literal["on", "reset"] = "on" if state == "off" else "reset"
        self._run(box, "power", kind)
        return CycleResult(power_state=state, action=kind)
