"""free_space: skip against raw on real filesystems (issue 12.3), part of benchmarks.imaging.

For each filesystem (ext4; NTFS when mkntfs and ntfs-3g's FUSE mount work here; XFS and btrfs
when xfsprogs / btrfs-progs and loop mounts do): a 1 GiB disk image, GPT with one partition,
garbage everywhere first (what deleted builds leave), the filesystem made without discard,
filled with 2 MiB files to ~60%, the older half deleted (a build tree removed); for ext4 once
more with every second file deleted instead (spread over the disk: the worst case for 4 MiB
chunks, nearly every chunk partly used). Then, in interleaved rounds (the fastest of each step
counts): backup raw and backup skip, each into a fresh store (no dedup between them), and a
restore of each onto a fresh (sparse) file. The skip backup's time includes mapping the disk
(partition table + partclone).

Checks, outside the timings: the skip image restored onto a target full of *other* garbage
passes the filesystem's own check (`e2fsck -fn`, `ntfsfix -n`, `xfs_repair -n`, `btrfs check
--readonly` and a read-only scrub) and every surviving file's content matches; the raw image
restores byte for byte.
"""

import hashlib
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._fsimage import (
    MiB,
    PartSpec,
    build_disk,
    check_partition,
    garbage,
    tools_missing,
)
from benchmarks._steps import warm
from onbox.imaging.backup import backup_disks
from onbox.imaging.restore import restore_image
from onbox.imaging.usedmap import chunk_ranges, map_disk
from onbox.store import open_store
from schema.types import FreeSpace

IP = "10.0.0.98"
FILE_SIZE = 2 * MiB


def _store(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "testbox-backup").touch()
    return path


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(4 * MiB):
            h.update(block)
    return h.hexdigest()


def _cpu() -> float:
    """CPU seconds of this process, all threads (robust where wall time is not: the machine
    is shared, and a load spike stretches wall time, not the work done)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _stored(root: Path) -> int:
    return sum(p.stat().st_size for p in (root / "store" / "chunks").rglob("*.zst"))


def bench_filesystem(
    fs: str, size: int, work: Path, repeat: int, delete: str = "first-half"
) -> dict[str, Any]:
    """One filesystem's figures; {'skipped': reason} when its tools are missing."""
    missing = tools_missing(fs)
    if shutil.which("partclone.extfs", path=os.environ.get("PATH", "") + ":/usr/sbin") is None:
        missing.append("partclone")
    if os.geteuid() != 0:
        missing.append("root")
    if fs == "ntfs" and not Path("/dev/fuse").exists():
        missing.append("/dev/fuse")
    if missing:
        return {"skipped": f"needs {', '.join(missing)}"}
    part_size = size - 2 * MiB  # GPT at both ends
    files = int(part_size * 0.6) // FILE_SIZE
    t0 = time.perf_counter()
    disk = work / f"{fs}.img"
    try:
        spec = PartSpec(fs, part_size, files=files, file_size=FILE_SIZE, delete=delete)
        built = build_disk(disk, size, [spec])
    except OSError as exc:  # a FUSE mount refused in a container, say
        return {"skipped": f"could not build the {fs} image: {exc}"}
    build_seconds = time.perf_counter() - t0
    disk_map = map_disk(disk, size)
    chunk = 4 * MiB
    used_per_chunk = [
        sum(e - s for s, e in chunk_ranges(disk_map.used, offset, chunk))
        for offset in range(0, size, chunk)
    ]
    best: dict[str, float] = {}
    stored: dict[str, int] = {}
    images: dict[str, str] = {}
    for round_ in range(repeat):
        for policy in ("raw", "skip"):
            root = _store(work / f"store-{fs}-{policy}-{round_}")
            warm(disk)  # untimed, right before (benchmarks._steps says why)
            t, c = time.perf_counter(), _cpu()
            policy_: FreeSpace = "skip" if policy == "skip" else "raw"
            report = backup_disks(open_store(root), IP, {"sda": disk}, free_space=policy_)
            _best(best, f"backup_{policy}", time.perf_counter() - t, _cpu() - c)
            stored[policy] = _stored(root)
            images[policy] = str(root)
            target = work / "target.img"
            with open(target, "wb") as f:
                f.truncate(size)
            warm(root)
            t, c = time.perf_counter(), _cpu()
            restore_image(open_store(root), IP, report.image_id, {"sda": target})
            _best(best, f"restore_{policy}", time.perf_counter() - t, _cpu() - c)
            if policy == "raw" and round_ == 0:
                best["raw_identical"] = float(_sha(target) == _sha(disk))
            target.unlink()
            if round_ < repeat - 1:
                shutil.rmtree(root)
    # Correctness of skip where it matters: a target whose free blocks hold other garbage.
    target = work / "target.img"
    garbage(target, size, seed=1234)
    restore_image(open_store(Path(images["skip"])), IP, "latest", {"sda": target})
    problems = check_partition(target, built.starts[0], part_size, fs, built.files[0])
    target.unlink()
    for policy in ("raw", "skip"):
        shutil.rmtree(images[policy], ignore_errors=True)
    disk.unlink()
    return {
        "size": size,
        "files_kept": len(built.files[0]),
        "used_bytes": disk_map.used_bytes,
        "chunks_free": sum(1 for u in used_per_chunk if u == 0),
        "chunks_partly_used": sum(1 for u in used_per_chunk if 0 < u < chunk),
        "chunks_full": sum(1 for u in used_per_chunk if u == chunk),
        "build_seconds": build_seconds,
        "stored_raw": stored["raw"],
        "stored_skip": stored["skip"],
        "stored_ratio": stored["skip"] / stored["raw"],
        **best,
        "backup_speedup": best["backup_raw"] / best["backup_skip"],
        "restore_speedup": best["restore_raw"] / best["restore_skip"],
        "raw_identical": bool(best["raw_identical"]),
        "skip_problems": problems,
        "notes": disk_map.notes,
    }


def _best(best: dict[str, float], key: str, seconds: float, cpu: float) -> None:
    best[key] = min(best.get(key, 1e9), seconds)
    best[f"{key}_cpu"] = min(best.get(f"{key}_cpu", 1e9), cpu)


def run_free_space(size: int, work_dir: Path, repeat: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="freespace-bench-", dir=work_dir))
    try:
        return {
            "ext4": bench_filesystem("ext4", size, work, repeat),
            "ext4, every 2nd file deleted": bench_filesystem("ext4", size, work, repeat, "every"),
            "ntfs": bench_filesystem("ntfs", size, work, repeat),
            "xfs": bench_filesystem("xfs", size, work, repeat),
            "btrfs": bench_filesystem("btrfs", size, work, repeat),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _timing(step: str, f: dict[str, Any]) -> str:
    raw, skip = f[f"{step}_raw"], f[f"{step}_skip"]
    raw_cpu, skip_cpu = f[f"{step}_raw_cpu"], f[f"{step}_skip_cpu"]
    return (
        f"    {step}: raw {raw:.2f} s, skip {skip:.2f} s ({raw / skip:.1f}x faster); "
        f"CPU {raw_cpu:.2f} s vs {skip_cpu:.2f} s ({raw_cpu / skip_cpu:.1f}x)"
    )


def report_free_space(r: dict[str, Any]) -> str:
    lines = ["free_space: skip vs raw (filesystem ~60% filled with 2 MiB files, half deleted):"]
    for fs, f in r.items():
        if "skipped" in f:
            lines.append(f"  {fs}: skipped ({f['skipped']})")
            continue
        ok = "clean, all files equal" if not f["skip_problems"] else "; ".join(f["skip_problems"])
        lines += [
            f"  {fs}: used {f['used_bytes'] / MiB:.0f} MiB of {f['size'] / MiB:.0f} MiB, "
            f"{f['files_kept']} files kept; 4 MiB chunks: {f['chunks_free']} free, "
            f"{f['chunks_partly_used']} partly used, {f['chunks_full']} fully used",
            f"    stored: raw {f['stored_raw'] / MiB:.0f} MiB, "
            f"skip {f['stored_skip'] / MiB:.0f} MiB ({100 * f['stored_ratio']:.0f}% of raw)",
            _timing("backup", f),
            _timing("restore", f),
            f"    after a skip restore onto garbage: {ok}; raw restore byte-identical: "
            f"{f['raw_identical']}",
        ]
    return "\n".join(lines)
