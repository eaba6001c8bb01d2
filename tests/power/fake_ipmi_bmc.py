"""An IPMI BMC for the tests: pyghmi's `fakebmc`, recording what the client asked for.

Run as `python -m tests.power.fake_ipmi_bmc PORT RECORD_FILE USER PASSWORD`. Every boot device
change and power action is appended to RECORD_FILE as one line ("bootdev network", "power on",
"power reset"), so a test sees what the real `ipmitool` client made the BMC do.
"""

import sys
from pathlib import Path
from typing import Any

from pyghmi.cmd.fakebmc import FakeBmc


class RecordingBmc(FakeBmc):  # type: ignore[misc]
    def __init__(self, authdata: dict[str, str], port: int, record: Path) -> None:
        super().__init__(authdata, port)
        self.record = record
        self.powerstate = "on"

    def _note(self, text: str) -> None:
        with open(self.record, "a") as f:
            f.write(text + "\n")

    def set_boot_device(self, bootdevice: Any) -> None:
        self._note(f"bootdev {bootdevice}")
        super().set_boot_device(bootdevice)

    def power_on(self) -> None:
        self._note("power on")
        self.powerstate = "on"

    def power_reset(self) -> None:
        self._note("power reset")


def main() -> None:
    port, record, user, password = sys.argv[1:5]
    state = sys.argv[5] if len(sys.argv) > 5 else "on"
    bmc = RecordingBmc({user: password}, int(port), Path(record))
    bmc.powerstate = state
    bmc.listen()


if __name__ == "__main__":
    main()
