"""A lab as an operator drives it: a desired file, `testboxctl`, and one box in QEMU.

Everything that changes what the box does goes through the desired file and `testboxctl`
(reconcile, status); the test only reads the shares to check the outcome, and powers the box on.
"""

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schema.layout import RESULTS_DIR
from tests.e2e.harness import Box
from tests.lab_paths import LabPaths
from tests.sample_site import one_box_yaml

BOX_IP = "10.0.2.15"  # what QEMU's user-network DHCP gives the guest
BOX_NAME = "tb-e2e-01"

# The maintenance system's console on the serial port (the log the tests read); with the 9p
# transport, the flag that selects it. Everything else on the kernel command line is what
# testboxctl renders for a real lab (nfsroot=10.0.2.2:/export/testbox-nfsroot). Static
# addressing (the SPEC's example; the e1000 is `ens2` in the guest): the initramfs's DHCP cost
# ~14 s under TCG.


# Root over NFS, shares over 9p: the shares' NFS mounts (mount.nfs, the kernel's text-based
# NFSv3 mount) fail against NFS-Ganesha through QEMU's user network with "Protocol not
# supported", while the root's mount (klibc nfsmount in the initramfs) works.
TRANSPORT_ARGS = {"nfs": ["testbox.shares=9p"], "9p": ["testbox.transport=9p"]}
# The NIC as the maintenance kernel names it: the BIOS box's e1000, the UEFI box's virtio-net
# in PCI slot 3 (harness.Box).
NIC = {"bios": "ens2", "uefi": "ens3"}


def desired_text(
    action: str, *, max_attempts: int, extra: str, transport: str, firmware: str = "bios"
) -> str:
    """The lab's desired file: the sample site (tests/sample_site.py) and the one box."""
    network = {"mode": "static", "gateway": "10.0.2.2", "netmask": "255.255.255.0"}
    return one_box_yaml(
        BOX_NAME,
        BOX_IP,
        action,
        disk="vda",
        max_attempts=max_attempts,
        extra=extra,
        network={**network, "device": NIC[firmware]},
        extra_args=["console=ttyS0,115200", *TRANSPORT_ARGS[transport]],
    )


@dataclass(kw_only=True)
class E2ELab(LabPaths):
    maintenance_root: Path
    log_dir: Path
    testboxctl: list[str]
    transport: str = "nfs"
    firmware: str = "bios"

    def want(
        self,
        action: str,
        *,
        max_attempts: int = 3,
        request: str | None = None,
        free_space: str | None = None,
    ) -> None:
        """The operator edits the desired file (`free_space`: the box's policy, if given)."""
        extra = f", request: {request!r}" if request else ""
        if free_space is not None:
            extra += f", free_space: {free_space}"
        if self.firmware != "bios":
            extra += f", firmware: {self.firmware}"
        self.desired.write_text(
            desired_text(
                action,
                max_attempts=max_attempts,
                extra=extra,
                transport=self.transport,
                firmware=self.firmware,
            )
        )

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.testboxctl, *args], capture_output=True, text=True, check=False, cwd=self.root
        )

    def reconcile(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.ctl("reconcile", "-f", str(self.desired), *extra)

    def status(self) -> dict[str, Any]:
        done = self.ctl("status", "-f", str(self.desired), "--json")
        assert done.returncode == 0, done.stderr
        boxes: list[dict[str, Any]] = json.loads(done.stdout)["boxes"]
        (entry,) = [b for b in boxes if b["name"] == BOX_NAME]
        return entry

    def result(self, request_id: str) -> dict[str, Any] | None:
        path = self.backup / BOX_IP / RESULTS_DIR / f"{request_id}.json"
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return data

    def box(self, disk: Path) -> Box:
        return Box(
            disk=disk,
            tftp_root=self.tftp,
            backup_root=self.backup,
            maintenance_root=self.maintenance_root,
            log_dir=self.log_dir,
            transport=self.transport,
            firmware=self.firmware,
            # The box's NVRAM lives as long as the lab: set up once, kept across boots.
            vars_file=self.root / "box-OVMF_VARS.fd" if self.firmware == "uefi" else None,
        )
