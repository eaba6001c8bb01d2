"""The box in a QEMU process: real SeaBIOS PXE, real PXELINUX, the real maintenance system.

One `Box` is one test box of the lab: an e1000 NIC that PXE-boots first (QEMU's user network:
DHCP gives 10.0.2.15, TFTP serves the lab's TFTP share), then its own disk, a virtio disk image
(`vda`). The maintenance root comes from the host's NFS server (tests/e2e/nfs.py) at
10.0.2.2 and the shares over virtio 9p, or with transport "9p" everything over virtio 9p
(tags `testbox-root`, `testbox-tftp`, `testbox-backup`; the root's initramfs and a systemd
generator use them when the kernel command line says so). `-no-reboot` turns the service's
reboot into QEMU exiting, so one `boot()` is one boot of the box.

A box with `firmware="uefi"` boots OVMF instead of SeaBIOS: a virtio-net NIC driven by OVMF
itself PXE-boots `syslinux.efi`, the disk is GPT with an EFI system partition, and the box's
NVRAM (its own OVMF_VARS copy) holds the boot order a lab sets up: PXE over IPv4 first, the
disk next (tests/e2e/ovmf.py, docs/network-boot.md).

The disk's first sector is a tiny boot loader standing in for the box's own OS: it prints
`LOCAL_DISK_MARKER` on the serial port and ends QEMU through the isa-debug-exit device, so
"the box came back to its own disk" is a line in the serial log and an exit status.
"""

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e import ovmf

QEMU = "qemu-system-x86_64"
PXELINUX = Path("/usr/lib/PXELINUX/pxelinux.0")
SYSLINUX_BIOS = Path("/usr/lib/syslinux/modules/bios")
LOCAL_DISK_MARKER = "TESTBOX-LOCAL-DISK: the box booted its own disk"
# isa-debug-exit turns `out 0xf4, 0x10` into QEMU exit status (0x10 << 1) | 1.
LOCAL_DISK_EXIT = 33
KERNEL_BANNER = "Linux version"
# What the unit's output looks like on the console (journal+console): `testbox-maintenance[PID]:`.
SERVICE_OUTPUT = "testbox-maintenance["
UNIT_START = "Starting testbox-maintenan"  # systemd's status line (cut at the console width)
POLL = 0.25  # how often a boot's serial log is looked at
KERNEL_TO_INIT = "Run /init as init process"  # the kernel hands over to the initramfs
# Between its banner and /init the guest kernel prints a line every few seconds at most, even
# under load. Silent this long there, it has hung in its own initialisation under TCG, before
# anything of this project runs (seen once in a local .ci/run, 2026-12-02: 138 s silent after
# "IP idents hash table entries"): the harness powers the box off and on again, as an operator
# would, at most KERNEL_HANG_RETRIES times, and says so in boots.txt.
KERNEL_HANG_SECONDS = 60.0
KERNEL_HANG_RETRIES = 1
REPORT_LINES = 25  # serial lines a failed boot's report shows (CI keeps only its output)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-B]|\x1bc")


def _hung_in_kernel(serial: str) -> bool:
    """The guest kernel has started (its banner) and not yet handed over to /init."""
    return KERNEL_BANNER in serial and KERNEL_TO_INIT not in serial


def boot_sector() -> bytes:
    """A 512-byte MBR: print the marker to COM1 (0x3f8), exit QEMU via port 0xf4, halt.

    Hand-assembled 16-bit code (no assembler needed on the CI machine):
    cli; xor ax,ax; mov ds,ax; mov si,msg; mov dx,0x3f8;
    loop: lodsb; test al,al; jz done; out dx,al; jmp loop;
    done: mov al,0x10; out 0xf4,al; hlt; jmp $-1
    """
    msg = f"\r\n{LOCAL_DISK_MARKER}\r\n".encode() + b"\0"
    code = bytes.fromhex("fa31c08ed8be1a7cbaf803ac84c07403eeebf8b010e6f4f4ebfd") + msg
    assert 0x7C00 + 26 == 0x7C1A  # msg follows the 26 bytes of code
    return code.ljust(510, b"\0") + b"\x55\xaa"


def make_disk(path: Path, size: int, seed: int) -> bytes:
    """A box disk: boot sector, then a mix of random, repeated and zero 1 MiB regions."""
    import random

    rng = random.Random(seed)
    mib = 1 << 20
    blocks = [boot_sector().ljust(mib, b"\0")]
    for i in range(1, size // mib):
        kind = i % 4
        if kind == 0:
            blocks.append(bytes(mib))
        elif kind == 1:
            blocks.append(rng.randbytes(mib))
        else:
            blocks.append((f"testbox block {i} ".encode() * (mib // 16))[:mib])
    data = b"".join(blocks)
    path.write_bytes(data)
    return data


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text).replace("\r", "")


def install_pxelinux(tftp_root: Path) -> None:
    """What the seed copies onto the TFTP share: pxelinux.0, ldlinux.c32 and the BIOS modules."""
    shutil.copy2(PXELINUX, tftp_root / "pxelinux.0")
    shutil.copy2(SYSLINUX_BIOS / "ldlinux.c32", tftp_root / "ldlinux.c32")
    shutil.copytree(SYSLINUX_BIOS, tftp_root / "bios", dirs_exist_ok=True)


@dataclass
class BootResult:
    exit_status: int | None  # None: the harness stopped QEMU
    seconds: float
    serial: str = field(repr=False)  # ANSI escapes stripped; report() shows its tail
    log_path: Path
    # Seconds from QEMU's start (power-on) to the first line of the service on the console
    # (None: it never ran). Polled every POLL seconds, so good to about that.
    service_started: float | None = None
    # ... and to systemd's "Starting testbox-maintenance" (the unit's start, before Python runs).
    unit_started: float | None = None
    # Why the boot ended: "exit" (QEMU ended), "stop_when", "timeout", "stalled" (no serial
    # output for the `stall` seconds boot() was given) or "kernel-hang" (KERNEL_HANG_SECONDS).
    ended: str = "exit"
    # The longest time the serial log did not grow (what a `stall` limit must stay above).
    longest_silence: float = 0.0

    def report(self) -> str:
        """What a failed assertion shows: the outcome, the milestones and the serial log's tail.

        CI keeps a run's output, not its files, so the tail is what tells a hang in the
        firmware, the initramfs or the service from a boot that was only slow.
        """
        tail = "\n".join(f"    | {line}" for line in self.serial.splitlines()[-REPORT_LINES:])
        return (
            f"{self.log_path}: QEMU exit {self.exit_status}, ended by {self.ended} after "
            f"{self.seconds:.1f} s ({self.milestones()}); its last lines:\n{tail}"
        )

    def milestones(self) -> str:
        unit = "-" if self.unit_started is None else f"{self.unit_started:.1f} s"
        service = "-" if self.service_started is None else f"{self.service_started:.1f} s"
        return f"unit started {unit}, service's first line {service}"

    @property
    def booted_maintenance(self) -> bool:
        return KERNEL_BANNER in self.serial

    @property
    def booted_local_disk(self) -> bool:
        return LOCAL_DISK_MARKER in self.serial and self.exit_status == LOCAL_DISK_EXIT


@dataclass
class Box:
    """One test box: its disk image, the lab's shares, the maintenance root, its serial logs."""

    disk: Path
    tftp_root: Path
    backup_root: Path
    maintenance_root: Path
    log_dir: Path
    # "nfs": the root comes from the host's NFS server (tests/e2e/nfs.py) as the rendered command
    # line says, the shares over 9p; "9p": root and shares over virtio 9p.
    transport: str = "nfs"
    memory_mb: int = 1024
    cpus: int = 2
    # TCG's full CPU model. (`max,svm=off,vmx=off`, to spare the guest loading kvm modules,
    # made early systemd units fail: "Mount process finished, but there is no mount".)
    cpu: str = "max"
    boots: int = 0
    firmware: str = "bios"
    # UEFI: the box's NVRAM, made by `setup_firmware` on the first boot when it does not exist.
    vars_file: Path | None = None

    def _virtfs_args(self) -> list[str]:
        def virtfs(path: Path, tag: str, readonly: bool = False) -> list[str]:
            spec = f"local,path={path},mount_tag={tag},security_model=none"
            return ["-virtfs", spec + (",readonly=on" if readonly else "")]

        shares = [
            *virtfs(self.tftp_root, "testbox-tftp"),
            *virtfs(self.backup_root, "testbox-backup"),
        ]
        if self.transport != "9p":
            return shares  # the root comes from the NFS server
        return [*virtfs(self.maintenance_root, "testbox-root", readonly=True), *shares]

    def _boot_devices(self, *, bootindex: bool) -> list[str]:
        """NIC (PXE first) and disk; under UEFI, `bootindex` only for the firmware setup boot."""
        if self.firmware != "uefi":
            return [
                "-netdev",
                f"user,id=n0,tftp={self.tftp_root},bootfile=pxelinux.0",
                "-device",
                "e1000,netdev=n0,bootindex=1",
                "-drive",
                f"file={self.disk},if=none,id=d0,format=raw",
                "-device",
                "virtio-blk-pci,drive=d0,bootindex=2",
            ]
        assert self.vars_file is not None, "a UEFI box needs its vars_file (NVRAM)"
        # `romfile=`: no iPXE option ROM; OVMF's own virtio-net driver and PXE do the work
        # (iPXE's EFI ROM fails on syslinux.efi). Fixed PCI slots: the boot entries in the
        # NVRAM name them, and the maintenance kernel names the NIC after its slot (ens3).
        # The same `pc` machine as the BIOS box (OVMF without SMM runs on it): q35 added an
        # AHCI controller, the ICH9 watchdog and more drivers to load, a slower boot under load.
        net, blk = (",bootindex=1", ",bootindex=2") if bootindex else ("", "")
        return [
            "-drive",
            f"if=pflash,format=raw,readonly=on,file={ovmf.OVMF_CODE}",
            "-drive",
            f"if=pflash,format=raw,file={self.vars_file}",
            "-netdev",
            f"user,id=n0,tftp={self.tftp_root},bootfile=syslinux.efi",
            "-device",
            f"virtio-net-pci,netdev=n0,romfile=,addr=0x3{net}",
            "-drive",
            f"file={self.disk},if=none,id=d0,format=raw",
            "-device",
            f"virtio-blk-pci,drive=d0,addr=0x4{blk}",
        ]

    def command(self, *, bootindex: bool = False) -> list[str]:
        return [
            QEMU,
            "-accel",
            "tcg",
            "-cpu",
            self.cpu,
            "-m",
            str(self.memory_mb),
            "-smp",
            str(self.cpus),
            "-nographic",
            "-no-reboot",
            "-no-user-config",
            "-nodefaults",
            "-vga",
            "none",
            "-serial",
            "stdio",
            "-monitor",
            "none",
            *self._boot_devices(bootindex=bootindex or self.firmware != "uefi"),
            *self._virtfs_args(),
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x04",
        ]

    def setup_firmware(self, timeout: float = 120.0) -> list["ovmf.BootEntry"]:
        """What a lab does once per UEFI box in its firmware setup: network first, disk next.

        A fresh NVRAM, one boot with `bootindex` on the NIC and the disk until OVMF starts PXE
        (its boot entries exist then), power off, rewrite BootOrder. Returns the new order.
        """
        assert self.vars_file is not None
        shutil.copyfile(ovmf.OVMF_VARS, self.vars_file)
        log_path = self.log_dir / "firmware-setup.serial.log"
        started = time.monotonic()
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                self.command(bootindex=True),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                while proc.poll() is None and time.monotonic() - started < timeout:
                    if ovmf.PXE_STARTING in self._read(log_path):
                        break
                    time.sleep(POLL)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if ovmf.PXE_STARTING not in self._read(log_path):
            raise AssertionError(f"OVMF never started PXE (exit {proc.returncode}): {log_path}")
        store = bytearray(self.vars_file.read_bytes())
        order = ovmf.network_then_disk(store)
        self.vars_file.write_bytes(store)
        return order

    def boot(
        self,
        timeout: float,
        stop_when: Callable[[str], bool] | None = None,
        stall: float | None = None,
    ) -> BootResult:
        """Power the box on once; wait for QEMU to end, `stop_when(serial)` to hold, or timeout.

        `stall`: also stop when the serial log has not grown for that long. With it, `timeout`
        can be a generous cap for a slow machine while a hung boot still ends soon.
        Stopping is a hard power-off, like pulling the plug on a box that sits in the
        service's retry pause. A guest kernel that hangs before /init is powered on again
        (KERNEL_HANG_SECONDS says why); the result is the last power-on's.
        """
        for attempt in range(KERNEL_HANG_RETRIES + 1):
            result = self._power_on(timeout, stop_when, stall)
            if result.ended != "kernel-hang" or attempt == KERNEL_HANG_RETRIES:
                break
            with (self.log_dir / "boots.txt").open("a") as summary:
                summary.write(
                    f"{result.log_path.name}: the guest kernel hung before /init "
                    f"({result.longest_silence:.0f} s silent); powered on again\n"
                )
        return result

    def _power_on(
        self,
        timeout: float,
        stop_when: Callable[[str], bool] | None,
        stall: float | None,
    ) -> BootResult:
        """One power-on of `boot`, to its end."""
        if self.firmware == "uefi" and self.vars_file is not None and not self.vars_file.exists():
            self.setup_firmware()
        self.boots += 1
        # Numbered across every Box of the test (they share log_dir), in boot order.
        number = len(list(self.log_dir.glob("boot-*.serial.log"))) + 1
        log_path = self.log_dir / f"boot-{number}.serial.log"
        started = time.monotonic()
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            status: int | None = None
            service_started: float | None = None
            unit_started: float | None = None
            ended = "exit"
            size, grew, longest_silence = 0, 0.0, 0.0
            try:
                while True:
                    try:
                        status = proc.wait(timeout=POLL)
                        break
                    except subprocess.TimeoutExpired:
                        pass
                    now = time.monotonic() - started
                    if now > timeout:
                        ended = "timeout"
                        break
                    current = log_path.stat().st_size
                    if current != size:
                        size, grew = current, now
                    longest_silence = max(longest_silence, now - grew)
                    if stall is not None and now - grew > stall:
                        ended = "stalled"
                        break
                    # Until the unit starts the service has not started either, so this reads
                    # the log on every poll of the stretch where a kernel hang can happen.
                    if service_started is None or stop_when is not None:
                        serial = self._read(log_path)
                        if unit_started is None and UNIT_START in serial:
                            unit_started = now
                        if service_started is None and SERVICE_OUTPUT in serial:
                            service_started = now
                        if stop_when is not None and stop_when(serial):
                            ended = "stop_when"
                            break
                        if (
                            unit_started is None
                            and now - grew > KERNEL_HANG_SECONDS
                            and _hung_in_kernel(serial)
                        ):
                            ended = "kernel-hang"
                            break
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        serial = self._read(log_path)
        if service_started is None and SERVICE_OUTPUT in serial:
            service_started = time.monotonic() - started
        result = BootResult(
            status,
            time.monotonic() - started,
            serial,
            log_path,
            service_started,
            unit_started,
            ended,
            longest_silence,
        )
        with (self.log_dir / "boots.txt").open("a") as summary:
            summary.write(
                f"{log_path.name}: {result.seconds:.1f} s, QEMU exit {status} ({ended}), "
                f"maintenance={result.booted_maintenance} local={result.booted_local_disk} "
                f"after power-on: {result.milestones()} "
                f"(timeout {timeout:.0f} s); longest silence {longest_silence:.1f} s\n"
            )
        return result

    @staticmethod
    def _read(path: Path) -> str:
        return strip_ansi(path.read_bytes().decode("utf-8", "replace"))
