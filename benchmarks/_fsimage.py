"""Real filesystem disk images for the free-space tests and benchmark: tables, files, deletions.

A disk is filled with garbage first (what a box's deleted builds leave behind), then gets a
partition table (sfdisk) and filesystems made without discarding, then files; some files are
deleted again, so their blocks hold data the filesystem no longer uses. Files are written
without mounting where a tool allows it (debugfs for ext4, mtools for FAT, ntfs-3g's FUSE
mount for NTFS), so those run as a normal user where FUSE is not needed; XFS and btrfs have no
such tool and are loop-mounted (root). The expected content of every surviving file is
returned for the round-trip checks.
"""

import os
import random
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

MiB = 1024 * 1024
SECTOR = 512


@dataclass(frozen=True)
class PartSpec:
    """One partition: `fs` is ext4, vfat, ntfs, xfs, btrfs or garbage (an unknown filesystem)."""

    fs: str
    size: int
    files: int = 0
    file_size: int = 256 * 1024
    delete_every: int = 2  # delete files 0, n, 2n, ... (2: half of them)
    # "every": the files above, spread over the disk (the worst case for chunks); "first-half":
    # the older half, as when a build tree written earlier is removed.
    delete: str = "every"


@dataclass
class BuiltDisk:
    path: Path
    size: int
    starts: list[int]
    # Per partition index: surviving file name -> content.
    files: dict[int, dict[str, bytes]] = field(default_factory=dict)


def tools_missing(*fs: str) -> list[str]:
    need = {"sfdisk"}
    if "ext4" in fs:
        need |= {"mkfs.ext4", "debugfs", "e2fsck"}
    if "vfat" in fs:
        need |= {"mkfs.vfat", "mcopy", "mdel", "fsck.vfat"}
    if "ntfs" in fs:
        need |= {"mkntfs", "ntfs-3g", "ntfsfix"}
    if "xfs" in fs:
        need |= {"mkfs.xfs", "xfs_repair", "xfs_logprint", "partclone.xfs", "mount"}
    if "btrfs" in fs:
        need |= {"mkfs.btrfs", "btrfs", "partclone.btrfs", "mount"}
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return sorted(t for t in need if shutil.which(t, path=path) is None)


def content(rng: random.Random, size: int) -> bytes:
    """File bytes that compress about 2:1 (half random, half a repeated word), like binaries."""
    out = bytearray()
    while len(out) < size:
        out += rng.randbytes(2048) + b"testbox " * 256
    return bytes(out[:size])


def garbage(path: Path, size: int, seed: int) -> None:
    rng = random.Random(seed)
    block = content(rng, 4 * MiB)
    with open(path, "r+b" if path.exists() else "wb") as f:
        for offset in range(0, size, len(block)):
            # Vary each block so chunks of garbage do not dedup among themselves.
            f.write(rng.randbytes(64) + block[64 : min(len(block), size - offset)])
        f.truncate(size)


def run(*argv: str, stdin: bytes | None = None) -> None:
    subprocess.run(argv, input=stdin, check=True, capture_output=True, timeout=600)


def build_disk(path: Path, size: int, parts: list[PartSpec], seed: int = 1) -> BuiltDisk:
    """A GPT disk image at `path` with `parts` laid out from 1 MiB on, garbage elsewhere."""
    garbage(path, size, seed)
    script = "label: gpt\n" + "".join(f",{p.size // SECTOR},L\n" for p in parts)
    run("sfdisk", "-q", str(path), stdin=script.encode())
    starts, position = [], MiB
    for p in parts:
        starts.append(position)
        position += p.size
    built = BuiltDisk(path, size, starts)
    rng = random.Random(seed + 1)
    with tempfile.TemporaryDirectory() as tmp:
        for index, (p, start) in enumerate(zip(parts, starts, strict=True)):
            if p.fs == "garbage":
                continue
            part = Path(tmp) / f"part{index}"
            with open(path, "rb") as disk, open(part, "wb") as out:
                disk.seek(start)
                out.write(disk.read(p.size))  # the garbage under the filesystem
            built.files[index] = _fill(p, part, Path(tmp), rng)
            with open(path, "r+b") as disk, open(part, "rb") as src:
                disk.seek(start)
                shutil.copyfileobj(src, disk, 4 * MiB)
            part.unlink()
    return built


def _fill(p: PartSpec, part: Path, tmp: Path, rng: random.Random) -> dict[str, bytes]:
    files = {
        f"f{i:04d}.bin": content(rng, p.file_size + rng.randrange(4096)) for i in range(p.files)
    }
    host = tmp / "files"
    host.mkdir(exist_ok=True)
    for name, data in files.items():
        (host / name).write_bytes(data)
    if p.delete == "first-half":
        doomed = list(files)[: len(files) // 2]
    else:
        doomed = [name for i, name in enumerate(files) if i % p.delete_every == 0]
    if p.fs == "ext4":
        run("mkfs.ext4", "-q", "-F", "-E", "nodiscard", str(part))
        cmds = "".join(f"write {host / n} {n}\n" for n in files)
        cmds += "".join(f"rm {n}\n" for n in doomed)
        run("debugfs", "-w", "-f", "-", str(part), stdin=cmds.encode())
    elif p.fs == "vfat":
        run("mkfs.vfat", str(part))
        if files:
            run("mcopy", "-i", str(part), *(str(host / n) for n in files), "::/")
        if doomed:
            run("mdel", "-i", str(part), *(f"::/{n}" for n in doomed))
    elif p.fs == "ntfs":
        run("mkntfs", "-q", "-F", "-f", str(part))
        mnt = tmp / "mnt"
        mnt.mkdir(exist_ok=True)
        run("ntfs-3g", str(part), str(mnt))
        try:
            for n in files:
                shutil.copyfile(host / n, mnt / n)
            for n in doomed:
                (mnt / n).unlink()
        finally:
            run("umount", str(mnt))
    elif p.fs in ("xfs", "btrfs"):
        # -K: no discard, so the garbage under the filesystem stays (as on a used disk).
        run(f"mkfs.{p.fs}", "-q", "-f", "-K", str(part))
        mnt = tmp / "mnt"
        mnt.mkdir(exist_ok=True)
        run("mount", "-o", "loop", str(part), str(mnt))
        try:
            for n in files:
                shutil.copyfile(host / n, mnt / n)
            # On disk before they are deleted, as on a box (else delayed allocation may never
            # write them, and the garbage below is all that the deleted files leave).
            run("sync", "-f", str(mnt))
            for n in doomed:
                (mnt / n).unlink()
        finally:
            run("umount", str(mnt))
    else:
        raise ValueError(f"unknown filesystem {p.fs!r}")
    shutil.rmtree(host)
    return {n: d for n, d in files.items() if n not in doomed}


def extract(disk: Path, start: int, size: int, out: Path) -> None:
    with open(disk, "rb") as src, open(out, "wb") as dst:
        src.seek(start)
        remaining = size
        while remaining:
            data = src.read(min(remaining, 4 * MiB))
            dst.write(data)
            remaining -= len(data)


def check_partition(
    disk: Path, start: int, size: int, fs: str, files: dict[str, bytes]
) -> list[str]:
    """Problems found: fsck (read-only) not clean, a file missing or different. [] = all good."""
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        part = Path(tmp) / "part"
        extract(disk, start, size, part)
        out = Path(tmp) / "out"
        out.mkdir()
        if fs == "ext4":
            fsck = subprocess.run(
                ["e2fsck", "-fn", str(part)], check=False, capture_output=True, timeout=600
            )
            if fsck.returncode != 0:
                problems.append(f"e2fsck -fn: {fsck.returncode}: {fsck.stdout.decode()[-400:]}")
            cmds = "".join(f"dump {n} {out / n}\n" for n in files)
            run("debugfs", "-f", "-", str(part), stdin=cmds.encode())
        elif fs == "vfat":
            fsck = subprocess.run(
                ["fsck.vfat", "-n", str(part)], check=False, capture_output=True, timeout=600
            )
            if fsck.returncode != 0:
                problems.append(f"fsck.vfat -n: {fsck.returncode}: {fsck.stdout.decode()[-400:]}")
            if files:
                run("mcopy", "-i", str(part), *(f"::/{n}" for n in files), str(out))
        elif fs == "ntfs":
            fsck = subprocess.run(
                ["ntfsfix", "-n", str(part)], check=False, capture_output=True, timeout=600
            )
            if fsck.returncode != 0:
                problems.append(f"ntfsfix -n: {fsck.returncode}: {fsck.stdout.decode()[-400:]}")
            mnt = Path(tmp) / "mnt"
            mnt.mkdir()
            run("ntfs-3g", "-o", "ro", str(part), str(mnt))
            try:
                for n in files:
                    shutil.copyfile(mnt / n, out / n)
            finally:
                run("umount", str(mnt))
        elif fs in ("xfs", "btrfs"):
            problems += _check_mounted_fs(fs, part, Path(tmp), files, out)
        for n, data in files.items():
            got = (out / n).read_bytes() if (out / n).exists() else None
            if got != data:
                problems.append(f"{fs} file {n}: {'missing' if got is None else 'differs'}")
    return problems


def _check_mounted_fs(
    fs: str, part: Path, tmp: Path, files: dict[str, bytes], out: Path
) -> list[str]:
    """XFS / btrfs: the read-only check, then the files copied out of a read-only mount; for
    btrfs also a read-only scrub, which checks every copy of every block against its checksum
    (so a second metadata copy restored as garbage is found, which `btrfs check` misses)."""
    problems: list[str] = []
    check = ["xfs_repair", "-n", str(part)] if fs == "xfs" else ["btrfs", "check", "--readonly"]
    if fs == "btrfs":
        check.append(str(part))
    done = subprocess.run(check, check=False, capture_output=True, timeout=600)
    if done.returncode != 0:
        text = (done.stdout + done.stderr).decode(errors="replace")
        problems.append(f"{' '.join(check[:-1])}: {done.returncode}: {text[-400:]}")
    mnt = tmp / "mnt"
    mnt.mkdir()
    run("mount", "-o", "loop,ro", str(part), str(mnt))
    try:
        if fs == "btrfs":
            scrub = subprocess.run(
                ["btrfs", "scrub", "start", "-B", "-r", str(mnt)],
                check=False,
                capture_output=True,
                timeout=600,
            )
            report = (scrub.stdout + scrub.stderr).decode(errors="replace")
            if scrub.returncode != 0 or "no errors found" not in report:
                problems.append(f"btrfs scrub -r: {scrub.returncode}: {report[-400:]}")
        for n in files:
            if (mnt / n).exists():
                shutil.copyfile(mnt / n, out / n)
    finally:
        run("umount", str(mnt))
    return problems
