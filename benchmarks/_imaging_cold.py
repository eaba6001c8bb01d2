"""A box's view, for benchmarks.imaging: the store NOT in the page cache, bytes read from the
share counted outside the engine, and the whole `testbox-maintenance` run timed (issue 12.3).

The backup share is a filesystem of its own: ext4 in a file under --dir, on a loop device with
direct I/O, unmounted and mounted again before every timed restore. Unmounting drops that
filesystem's page cache, and direct I/O keeps the backing file out of the host's, so each
restore reads from the disk below: a cold store, as on a box whose NFS server did not just serve
the same image. The loop device's own counter (`/sys/block/loopN/stat`, sectors read) is what
crossed from the share into this machine, measured outside the engine and its process.

The baselines live on the same share, under the same rules: `dd | gzip` and `zstd -3 -T0`
write their output there, `gunzip -c | dd` and `zstd -dc | dd` read it back cold. The disk (a
box's local disk) is warm for everyone, as in the rest of the benchmark.

Two engines are timed: the engine alone (benchmarks._imaging_child, interpreter start-up
excluded), and the real `testbox-maintenance` entry point armed by the controller's own
renderers (tests/service/lab.py): start-up, the request checks, info collection, logs, the
result record and the config's removal all count, as on a box. Only the reboot is left out.
Root only (losetup, mount); without it this part reports why it was skipped.
"""

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._steps import (
    Step,
    child,
    fresh_target,
    interleaved,
    mbps,
    sh,
    shell,
    store_bytes,
    warmed,
)
from tests.service.lab import BoxLab

SECTOR = 512
DD = "bs=256K status=none iflag=fullblock"
FLOOR_BLOCK = 4 << 20  # the engine's chunk size: what a restore writes at a time


class ColdShare:
    """ext4 on a direct-I/O loop device, mounted at `mount`; `cool()` empties its cache."""

    def __init__(self, image: Path, size: int, mount: Path) -> None:
        self.image, self.mount = image, mount
        with open(image, "wb") as f:
            f.truncate(size)
        # Eager inode-table and journal init: no background writes during the timings.
        sh(f"mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 {image}")
        self.device = subprocess.run(
            ["losetup", "--direct-io=on", "--find", "--show", str(image)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        mount.mkdir()
        self._mount()

    def _mount(self) -> None:
        subprocess.run(["mount", "-t", "ext4", self.device, str(self.mount)], check=True)

    def cool(self) -> None:
        """Unmount and mount again: nothing of the share is left in memory."""
        subprocess.run(["umount", str(self.mount)], check=True)
        self._mount()

    def _stat(self) -> list[str]:
        return Path(f"/sys/block/{Path(self.device).name}/stat").read_text().split()

    def sectors_read(self) -> int:
        return int(self._stat()[2])

    def sectors_written(self) -> int:
        """Written to the device so far; `flush()` first for what is still in the cache."""
        return int(self._stat()[6])

    def flush(self) -> None:
        subprocess.run(["sync", "-f", str(self.mount)], check=True)

    def close(self) -> None:
        subprocess.run(["umount", str(self.mount)], check=False)
        subprocess.run(["losetup", "-d", self.device], check=False)
        self.image.unlink(missing_ok=True)


def cold_step(
    share: ColdShare, prepare: Callable[[], None], run: Callable[[], dict[str, Any]]
) -> Step:
    """`prepare()` (untimed), cool the share, then time `run()` and count what it read from
    the share."""

    def step() -> dict[str, Any]:
        prepare()
        share.cool()
        before = share.sectors_read()
        t0 = time.perf_counter()
        out = run()
        seconds = time.perf_counter() - t0
        out.setdefault("seconds", seconds)
        out["wall"] = seconds
        out["share_bytes_read"] = (share.sectors_read() - before) * SECTOR
        return out

    return step


def run_cold(size: int, disk: Path, work: Path, repeat: int) -> dict[str, Any]:
    """The figures of this part; {'skipped': why} where it cannot run."""
    missing = [tool for tool in ("losetup", "mount", "mkfs.ext4") if shutil.which(tool) is None]
    if os.geteuid() != 0:
        missing.append("root")
    if missing:
        return {"skipped": "needs " + ", ".join(missing)}
    # The maintenance root's venv holds compiled bytecode (pip compiles on install); so must
    # the tree the service runs from here, or every run pays for compiling what PYTHONDONTWRITE-
    # BYTECODE (set on these machines) keeps from being cached.
    packages = [str(Path(__file__).resolve().parents[1] / p) for p in ("onbox", "schema")]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *packages], check=True)
    share = ColdShare(work / "share.ext4", 3 * size + (256 << 20), work / "share")
    try:
        return _measure(size, disk, work, share, repeat)
    finally:
        share.close()


def _measure(size: int, disk: Path, work: Path, share: ColdShare, repeat: int) -> dict[str, Any]:
    lab = BoxLab(share.mount).make_shares()
    rounds = iter(range(1_000_000))  # a new request token for every service run
    gz, zst = share.mount / "disk.gz", share.mount / "disk.zst"
    target = work / "cold-target.img"

    def arm(action: str) -> str:
        """The controller's part (outside the timings): the box's config and request files."""
        return lab.arm(lab.request(action, disks=["sda"], token=f"{action[0]}{next(rounds)}"))

    def service(cmdline: str, on: Path) -> dict[str, Any]:
        done = lab.run(cmdline, disks={"sda": on}, timeout=1800)
        if done.code != 0:
            raise RuntimeError(f"testbox-maintenance failed ({done.code}): {done.stderr[-500:]}")
        return {}

    def fresh_share() -> None:
        shutil.rmtree(lab.backup / "store", ignore_errors=True)
        shutil.rmtree(lab.box_dir, ignore_errors=True)

    # Backups: the share is written, the disk read warm; each round into an empty store.
    def service_backup() -> dict[str, Any]:
        fresh_share()
        cmdline = arm("backup")
        t0 = time.perf_counter()
        service(cmdline, disk)
        return {"seconds": time.perf_counter() - t0}

    def written(step: Step) -> Step:
        """`step`, and what it wrote to the share (flushed afterwards, outside the timing)."""

        def counted() -> dict[str, Any]:
            share.flush()
            before = share.sectors_written()
            out = step()
            share.flush()
            out["share_bytes_written"] = (share.sectors_written() - before) * SECTOR
            return out

        return counted

    # The box's disk warm for everyone, right before each step (benchmarks._steps says why).
    backups = interleaved(
        {
            "ddgzip": warmed(
                written(shell(f"dd if={disk} bs=256K status=none | gzip -c > {gz}")), disk
            ),
            "zstd3": warmed(written(shell(f"zstd -q -f -3 -T0 -c {disk} > {zst}")), disk),
            "service": warmed(written(service_backup), disk),
        },
        repeat,
    )
    r: dict[str, Any] = {
        "backup": backups,
        "stored_bytes": store_bytes(lab.backup),
        "gzip_bytes": gz.stat().st_size,
        "zstd3_bytes": zst.stat().st_size,
    }

    # Restores: every one from a cold share onto a fresh file on --dir's filesystem (ext4).
    def fresh() -> None:
        fresh_target(target, size)

    # The disk floor: the I/O of a restore and nothing else. Every stored chunk file is read
    # from the cold share (8 readers) while the blocks a restore writes (the non-zero ones)
    # are written to the target with O_DIRECT; no decompression, no hashing. On a machine
    # whose share and target sit on one disk, no restore can beat this.
    chunk_files = lab.backup / "store" / "chunks"
    floor_blocks = _nonzero_blocks(disk, FLOOR_BLOCK)
    floor = (
        f"find {chunk_files} -name '*.zst' -print0 | xargs -0 -P 8 -n 8 cat > /dev/null & "
        f"dd if=/dev/zero of={target} bs={FLOOR_BLOCK} count={floor_blocks} oflag=direct "
        "conv=notrunc status=none; wait"
    )

    cmdline = ""

    def arm_restore() -> None:
        """The controller's part of a service restore (untimed): a fresh target, the box armed."""
        nonlocal cmdline
        fresh()
        cmdline = arm("restore")

    restores = interleaved(
        {
            "floor": cold_step(share, fresh, shell(floor)),
            "gunzipdd": cold_step(share, fresh, shell(f"gunzip -c {gz} | dd of={target} {DD}")),
            "gunzipdd_fsync": cold_step(
                share, fresh, shell(f"gunzip -c {gz} | dd of={target} {DD} conv=fsync")
            ),
            "zstddd": cold_step(share, fresh, shell(f"zstd -q -dc {zst} | dd of={target} {DD}")),
            "zstddd_fsync": cold_step(
                share, fresh, shell(f"zstd -q -dc {zst} | dd of={target} {DD} conv=fsync")
            ),
            "engine": cold_step(
                share,
                fresh,
                lambda: child("restore", str(lab.backup), str(target), "--ip", lab.ip),
            ),
            # Last in a round: the byte-identical check below is on the service's target.
            "service": cold_step(share, arm_restore, lambda: service(cmdline, target)),
        },
        repeat,
    )
    subprocess.run(["cmp", "-s", str(disk), str(target)], check=True)  # byte-identical
    target.unlink()
    r["restore"] = restores
    r["floor_bytes_written"] = floor_blocks * FLOOR_BLOCK
    r["dir"] = str(work)
    return r


def _nonzero_blocks(disk: Path, block: int) -> int:
    zero = bytes(block)
    with open(disk, "rb") as f:
        return sum(1 for data in iter(lambda: f.read(block), b"") if data != zero[: len(data)])


def report_cold(r: dict[str, Any], size: int) -> str:
    if "skipped" in r:
        return f"cold store and whole-service runs: skipped ({r['skipped']})"
    b, rs = r["backup"], r["restore"]

    def speed(step: dict[str, Any]) -> float:
        return mbps(size, float(step["seconds"]))

    gzip, zstd, svc = speed(b["ddgzip"]), speed(b["zstd3"]), speed(b["service"])
    stored = r["stored_bytes"]
    lines = [
        "cold store (ext4 on a direct-I/O loop device, remounted before each restore), "
        f"targets in {r['dir']}:",
        f"  backup, whole testbox-maintenance run {svc:8.1f} MB/s = {svc / gzip:.1f}x dd|gzip "
        f"(target >= 10x), {svc / zstd:.2f}x zstd -3 -T0; stored {stored / 1e6:.1f} MB, "
        f"zstd -3 {r['zstd3_bytes'] / 1e6:.1f} MB, gzip {r['gzip_bytes'] / 1e6:.1f} MB",
        "  written to the share (device counter, journal included): backup "
        + ", ".join(
            f"{label} {b[name]['share_bytes_written'] / 1e6:.1f} MB"
            for name, label in (("service", "whole run"), ("zstd3", "zstd -3"), ("ddgzip", "gzip"))
        ),
    ]
    gunzip, gunzip_fsync = speed(rs["gunzipdd"]), speed(rs["gunzipdd_fsync"])
    zstddd, zstddd_fsync = speed(rs["zstddd"]), speed(rs["zstddd_fsync"])
    lines += [
        f"  gunzip -c | dd         {gunzip:8.1f} MB/s   (conv=fsync {gunzip_fsync:.1f} MB/s), "
        f"read from the share {rs['gunzipdd']['share_bytes_read'] / 1e6:.1f} MB",
        f"  zstd -dc | dd          {zstddd:8.1f} MB/s   (conv=fsync {zstddd_fsync:.1f} MB/s), "
        f"read from the share {rs['zstddd']['share_bytes_read'] / 1e6:.1f} MB",
    ]
    floor = speed(rs["floor"])
    for name, label in (("engine", "restore, engine"), ("service", "restore, whole run")):
        ours = speed(rs[name])
        read = rs[name]["share_bytes_read"]
        lines.append(
            f"  {label:<22} {ours:8.1f} MB/s   = {ours / gunzip:.1f}x gunzip|dd (target >= 6x), "
            f"{ours / zstddd:.2f}x zstd -dc|dd (target >= 0.8x), {ours / floor:.2f}x the disk "
            f"floor; read from the share {read / 1e6:.1f} MB = {read / stored:.3f}x stored "
            "(target <= 1.05x)"
        )
    lines.append(
        f"  disk floor             {floor:8.1f} MB/s   = {floor / gunzip:.1f}x gunzip|dd: the "
        f"stored chunks read cold while {r['floor_bytes_written'] / 1e6:.0f} MB are written "
        "O_DIRECT, no CPU work (no restore on this share and target can be faster)"
    )
    return "\n".join(lines)
