"""Imaging benchmark: the engine against the seed's `dd | gzip` and `gunzip | dd`, and zstd.

    python -m benchmarks.imaging [--size-gib 1] [--quick] [--dir /var/tmp] [--levels 1,3,6]

On a synthetic disk (benchmarks/_imaging_disk.py: 40% zeros, 40% system files, 20% random),
all in one run, warm page cache, files under --dir (deleted afterwards):
  * `dd bs=256K | gzip -c`, `zstd -3 -T0`, `gunzip -c | dd` (the seed's restore,
    conv=notrunc; once more with conv=fsync, because the engine fsyncs its target);
  * backup (each zstd level of --levels in a fresh store, then the default level), restore onto
    a fresh file, restore onto the unchanged result, backup after 1% of the chunks changed;
  * peak memory (VmHWM of the backup process) for the disk and for a 4x larger one.
`--quick` skips the level sweep and the 4x memory run. Engine times exclude interpreter start
(reported separately as wall time).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._imaging_disk import change_chunks, make_disk
from onbox.imaging.codec import DEFAULT_LEVEL

GIB = 1024**3
CHUNK = 4 * 1024 * 1024


def sh(command: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", command], check=True)
    return time.perf_counter() - t0


def child(*args: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks._imaging_child", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    result["wall"] = time.perf_counter() - t0
    return result


def store_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in (root / "store" / "chunks").rglob("*.zst"))


def mbps(size: int, seconds: float) -> float:
    return size / seconds / 1e6


def fresh_target(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def run(size: int, work: Path, quick: bool, levels: list[int]) -> dict[str, Any]:
    r: dict[str, Any] = {"size": size, "cpus": os.cpu_count()}
    disk = work / "disk.img"
    t0 = time.perf_counter()
    r["composition"] = make_disk(disk, size)
    r["generate_seconds"] = time.perf_counter() - t0
    sh(f"cat {disk} > /dev/null")  # warm cache for everyone

    gz, zst, base = work / "disk.gz", work / "disk.zst", work / "base.img"
    r["ddgzip_seconds"] = sh(f"dd if={disk} bs=256K status=none | gzip -c > {gz}")
    r["gzip_bytes"] = gz.stat().st_size
    r["zstd3_seconds"] = sh(f"zstd -q -3 -T0 -c {disk} > {zst}")
    r["zstd3_bytes"] = zst.stat().st_size
    r["gunzipdd_seconds"] = sh(
        f"gunzip -c {gz} | dd of={base} bs=256K conv=notrunc status=none iflag=fullblock"
    )
    base.unlink()
    # The engine fsyncs what it restores; the same pipeline with conv=fsync is the like-for-like.
    r["gunzipdd_fsync_seconds"] = sh(
        f"gunzip -c {gz} | dd of={base} bs=256K conv=notrunc,fsync status=none iflag=fullblock"
    )
    for p in (zst, base):
        p.unlink()

    if not quick:
        r["levels"] = {}
        for level in levels:
            root = work / f"store-level{level}"
            root.mkdir()
            res = child("backup", str(root), str(disk), "--level", str(level))
            r["levels"][level] = {"seconds": res["seconds"], "stored": store_bytes(root)}
            shutil.rmtree(root)

    root = work / "store"
    root.mkdir()
    first = child("backup", str(root), str(disk))
    r["backup"] = first
    r["stored_bytes"] = store_bytes(root)

    target = fresh_target(work / "target.img", size)
    r["restore_fresh"] = child("restore", str(root), str(target))
    subprocess.run(["cmp", "-s", str(disk), str(target)], check=True)  # byte-identical
    target2 = fresh_target(work / "target2.img", size)
    r["restore_fresh_noprecheck"] = child("restore", str(root), str(target2), "--no-precheck")
    target2.unlink()
    r["restore_unchanged"] = child("restore", str(root), str(target))

    r["changed_chunks"] = change_chunks(disk, CHUNK, 0.01)
    r["chunks"] = -(-size // CHUNK)
    second = child("backup", str(root), str(disk))
    r["incremental"] = second
    r["restore_changed"] = child("restore", str(root), str(target))
    subprocess.run(["cmp", "-s", str(disk), str(target)], check=True)
    for p in (target, gz):
        p.unlink()

    if not quick:
        big = work / "disk4.img"
        make_disk(big, 4 * size, seed=4)
        root4 = work / "store4"
        root4.mkdir()
        r["backup_4x"] = child("backup", str(root4), str(big))
        big.unlink()
        shutil.rmtree(root4)
    return r


def report(r: dict[str, Any]) -> str:
    size = r["size"]
    b, rf, ru, inc = r["backup"], r["restore_fresh"], r["restore_unchanged"], r["incremental"]
    gzip_mbps = mbps(size, r["ddgzip_seconds"])
    zstd_mbps = mbps(size, r["zstd3_seconds"])
    gunzip_mbps = mbps(size, r["gunzipdd_seconds"])
    gunzip_fsync_mbps = mbps(size, r["gunzipdd_fsync_seconds"])
    ours = mbps(size, b["seconds"])
    restore = mbps(size, rf["seconds"])
    comp = r["composition"]
    lines = [
        f"synthetic disk {size / GIB:.2f} GiB: "
        + ", ".join(f"{k} {100 * v / size:.0f}%" for k, v in comp.items())
        + f"; {r['cpus']} CPUs (shared with other work)",
        f"dd bs=256K | gzip -c     {gzip_mbps:8.1f} MB/s   output {r['gzip_bytes'] / 1e6:8.1f} MB "
        f"(ratio {size / r['gzip_bytes']:.2f})",
        f"zstd -3 -T0              {zstd_mbps:8.1f} MB/s   output {r['zstd3_bytes'] / 1e6:8.1f} MB "
        f"(ratio {size / r['zstd3_bytes']:.2f})",
        f"gunzip -c | dd           {gunzip_mbps:8.1f} MB/s   "
        f"(with conv=fsync, as the engine syncs: {gunzip_fsync_mbps:.1f} MB/s)",
    ]
    for level, lv in sorted(r.get("levels", {}).items()):
        lines.append(
            f"backup, zstd level {level:<2}     {mbps(size, lv['seconds']):8.1f} MB/s   "
            f"stored {lv['stored'] / 1e6:8.1f} MB (ratio {size / lv['stored']:.2f})"
        )
    lines += [
        f"backup (level {DEFAULT_LEVEL})         {ours:8.1f} MB/s   stored "
        f"{r['stored_bytes'] / 1e6:8.1f} MB (ratio {size / r['stored_bytes']:.2f}); "
        f"wall incl. interpreter {b['wall']:.2f} s",
        f"  = {ours / gzip_mbps:.1f}x dd|gzip (target >= 10x), "
        f"{ours / zstd_mbps:.2f}x zstd -3 -T0 (target >= 0.7x); "
        f"stored/gzip output {r['stored_bytes'] / r['gzip_bytes']:.2f} (target <= 1)",
        f"restore onto fresh file  {restore:8.1f} MB/s   = {restore / gunzip_mbps:.1f}x gunzip|dd "
        f"(target >= 5x; {restore / gunzip_fsync_mbps:.1f}x with fsync); "
        f"written {rf['bytes_written'] / 1e6:.1f} MB, skipped "
        f"{rf['bytes_skipped'] / 1e6:.1f} MB (zeros already there)",
        "  without the hash pre-check "
        f"{mbps(size, r['restore_fresh_noprecheck']['seconds']):.1f} MB/s",
        f"restore onto unchanged   {mbps(size, ru['seconds']):8.1f} MB/s   written "
        f"{ru['bytes_written']} B = {100 * ru['bytes_written'] / size:.2f}% of the disk "
        "(target < 1%)",
        f"backup after {r['changed_chunks']} of {r['chunks']} chunks changed (1%): "
        f"{mbps(size, inc['seconds']):.1f} MB/s, new bytes {inc['bytes_stored'] / 1e6:.2f} MB = "
        f"{100 * inc['bytes_stored'] / r['stored_bytes']:.2f}% of the first backup (target <= 2%)",
        f"restore of that onto the previous disk: written "
        f"{r['restore_changed']['bytes_written'] / 1e6:.1f} MB",
        f"peak RSS of the backup process: {b['maxrss_kib'] / 1024:.0f} MiB for "
        f"{size / GIB:.2f} GiB",
    ]
    if "backup_4x" in r:
        b4 = r["backup_4x"]
        lines[-1] += (
            f", {b4['maxrss_kib'] / 1024:.0f} MiB for {4 * size / GIB:.2f} GiB "
            f"(backup {mbps(4 * size, b4['seconds']):.1f} MB/s)"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gib", type=float, default=1.0)
    parser.add_argument("--quick", action="store_true", help="no level sweep, no 4x memory run")
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp"))
    parser.add_argument("--levels", default="1,3,6")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    size = int(args.size_gib * GIB) // CHUNK * CHUNK
    work = Path(tempfile.mkdtemp(prefix="imaging-bench-", dir=args.dir))
    try:
        r = run(size, work, args.quick, [int(x) for x in args.levels.split(",") if x])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(report(r))
    if args.json:
        args.json.write_text(json.dumps(r, indent=1))


if __name__ == "__main__":
    main()
