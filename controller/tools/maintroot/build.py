"""Build the maintenance root: the seed's hand-made Debian NFS root, automated and cached.

Two layers, each cached by a hash of what it is built from, because a cold build takes minutes
and CI rebuilds on every run:

* the **base** (`<cache>/base-<key>`): debootstrap minbase, Debian's generic kernel unpacked
  into it (never installed on the host), the initramfs built inside it with the overlay and 9p
  scripts of `files.py`, fstab, getty noclear, units masked. Key: suite, mirror, package list,
  kernel package file, and the text of every file written.
* the **root** (`--out`): a copy of the base plus the project and its dependencies in a venv
  (`/opt/testboxctl`, from wheels downloaded on the host: pip inside the chroot has no network)
  and the `testbox-maintenance` unit enabled. Key: base key, wheels, project sources.

Finally the kernel and initrd are copied to `<tftp_root>/maintenance-boot/` (contract §6's
`maintenance.kernel`/`initrd`), under the versioned names and as `vmlinuz`/`initrd.img`.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from controller.errors import ControllerError
from controller.tools.maintroot import files
from onbox.atomic import atomic_write_text
from onbox.shareio import Share, ShareAccessError

# Bump when the build steps change in a way the hashed inputs do not show.
BUILDER_VERSION = "1"
STAMP = ".testboxctl-root.json"
VENV = "/opt/testboxctl"
UNIT = "testbox-maintenance.service"
BOOT_DIR = "maintenance-boot"
# What the project's wheel is built from (and the root's cache key hashes).
SOURCE_FILES = ("pyproject.toml", "README.md")
SOURCE_PACKAGES = ("schema", "controller", "onbox")
PYTHON_TAGS = ("--python-version", "3.11", "--implementation", "cp", "--abi", "cp311")
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")
PACKAGES = (
    "python3",
    "python3-venv",
    "systemd-sysv",
    "kmod",
    "udev",
    "initramfs-tools",
    "busybox",
    "nfs-common",
    "iproute2",
    "pciutils",
    "dmidecode",
    "fdisk",
    "zip",
    "partclone",  # used-block maps for free_space: skip (onbox.imaging.usedmap)
    # xfs_logprint: XFS is mapped only with a clean log (partclone.xfs ignores the log);
    # without it every XFS partition stays raw. Its libicu costs ~36 MB of the root.
    "xfsprogs",
)

Log = Callable[[str], None]


class BuildError(ControllerError):
    """A build step failed; the message names the step and the log to read."""


@dataclass(frozen=True)
class BuildSettings:
    out: Path
    cache: Path
    project_dir: Path
    suite: str = "bookworm"
    mirror: str = "http://deb.debian.org/debian"
    kernel_package: str = "linux-image-amd64"
    kernel_deb: Path | None = None
    nfs_server: str = "10.0.2.2"
    tftp_export: str = "/export/testbox-tftp"
    backup_export: str = "/export/testbox-backup"
    packages: Sequence[str] = field(default=PACKAGES)


@dataclass(frozen=True)
class BuildReport:
    root: Path
    kernel_version: str
    base_reused: bool
    root_reused: bool
    boot_files: list[Path]


def project_dir_of_this_checkout() -> Path:
    """The source tree this module runs from (an editable install); the wheel is built from it."""
    here = Path(__file__).resolve().parents[3]
    if not (here / "pyproject.toml").is_file():
        raise BuildError(f"no pyproject.toml above {Path(__file__).resolve()}: pass --project DIR")
    return here


def _sha256(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


class _Runner:
    """Runs build commands with their output appended to one log file."""

    def __init__(self, log_path: Path, log: Log) -> None:
        self.log_path = log_path
        self.log = log

    def run(self, step: str, argv: Sequence[str | Path], cwd: Path | None = None) -> str:
        self.log(step)
        with self.log_path.open("a") as f:
            f.write(f"\n== {step}: {' '.join(map(str, argv))}\n")
            f.flush()
            proc = subprocess.run(
                [str(a) for a in argv],
                cwd=cwd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                check=False,
                env={
                    **os.environ,
                    "DEBIAN_FRONTEND": "noninteractive",
                    "LC_ALL": "C",
                    # System directories first: chroot resolves commands in the new root.
                    "PATH": f"/usr/sbin:/usr/bin:/sbin:/bin:{os.environ.get('PATH', '')}",
                },
            )
            f.write(proc.stdout)
        if proc.returncode != 0:
            tail = " | ".join(proc.stdout.strip().splitlines()[-3:])
            raise BuildError(
                f"{step} failed (exit {proc.returncode}): {tail} (full log: {self.log_path})"
            )
        return proc.stdout


@contextlib.contextmanager
def _chroot_mounts(root: Path, run: _Runner) -> Iterator[None]:
    """/proc inside the chroot while commands run there; always unmounted after.

    No bind of the host's /dev: debootstrap's static nodes (null, zero, urandom, ...) are all
    the build needs, and a recursive bind of a shared /dev propagates mounts and unmounts back
    to the host's /dev/pts and /dev/shm.
    """
    target = root / "proc"
    run.run("mount proc in the chroot", ["mount", "-t", "proc", "proc", str(target)])
    try:
        yield
    finally:
        subprocess.run(["umount", str(target)], check=False)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text, mode)


def _kernel_deb(settings: BuildSettings, run: _Runner) -> Path:
    """The generic kernel package file, downloaded once into the cache (not installed)."""
    if settings.kernel_deb is not None:
        return settings.kernel_deb.resolve()
    deps = run.run("resolve the kernel package", ["apt-cache", "depends", settings.kernel_package])
    match = re.search(r"Depends: (linux-image-[0-9][^\s]*)", deps)
    if not match:
        raise BuildError(f"apt-cache depends {settings.kernel_package}: no linux-image dependency")
    name = match.group(1)
    debs = settings.cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{name}_*.deb"))
    if not found:
        run.run(f"download {name}", ["apt-get", "download", "-q", name], cwd=debs)
        found = sorted(debs.glob(f"{name}_*.deb"))
    if not found:
        raise BuildError(f"apt-get download {name} left no {name}_*.deb in {debs}")
    return found[-1]


def _base_key(settings: BuildSettings, kernel_deb: Path) -> str:
    return _sha256(
        BUILDER_VERSION,
        settings.suite,
        settings.mirror,
        ",".join(settings.packages),
        kernel_deb.name,
        files.fstab(settings.nfs_server, settings.tftp_export, settings.backup_export),
        *files.all_texts(),
    )


def _build_base(settings: BuildSettings, kernel_deb: Path, base: Path, run: _Runner) -> None:
    tmp = base.with_name(base.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    run.run(
        "debootstrap (minbase)",
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(settings.packages)}",
            settings.suite,
            tmp,
            settings.mirror,
        ],
    )
    # Not `dpkg-deb -x`: its tar would replace the usr-merged /lib symlink with a directory.
    run.run(
        "unpack the kernel package",
        [
            "sh",
            "-c",
            'dpkg-deb --fsys-tarfile "$1" | tar -x --keep-directory-symlink -C "$2"',
            "unpack",
            kernel_deb,
            tmp,
        ],
    )
    version = _kernel_version(tmp)
    etc = tmp / "etc"
    _write(etc / "initramfs-tools/conf.d/testbox", files.INITRAMFS_CONF)
    with (etc / "initramfs-tools/modules").open("a") as f:
        f.write(files.INITRAMFS_MODULES)
    _write(
        etc / "initramfs-tools/scripts/init-bottom/00_overlay_root",
        files.OVERLAY_INIT_BOTTOM,
        0o755,
    )
    _write(etc / "initramfs-tools/hooks/testbox_9p_root", files.NINEP_ROOT_HOOK, 0o755)
    _write(etc / "systemd/system/getty@tty1.service.d/noclear.conf", files.GETTY_NOCLEAR)
    _write(etc / f"systemd/system/{UNIT}.d/10-wait-for-disks.conf", files.SERVICE_DISKS_DROPIN)
    _write(etc / "systemd/system-generators/testbox-9p-shares", files.NINEP_SHARES_GENERATOR, 0o755)
    _write(
        etc / "fstab",
        files.fstab(settings.nfs_server, settings.tftp_export, settings.backup_export),
    )
    _write(etc / "hostname", "testbox-maintenance\n")
    for share in ("testbox-tftp", "testbox-backup"):
        (tmp / "mnt" / share).mkdir(parents=True, exist_ok=True)
    with _chroot_mounts(tmp, run):
        run.run("depmod", ["chroot", tmp, "depmod", "-a", version])
        run.run(
            "build the initramfs",
            ["chroot", tmp, "mkinitramfs", "-o", f"/boot/initrd.img-{version}", version],
        )
        run.run(
            "mask units a maintenance boot does not need",
            ["chroot", tmp, "systemctl", "mask", *files.MASKED_UNITS],
        )
        # Rescue is done on the console: root logs in there without a password (see docs).
        run.run("allow root on the console", ["chroot", tmp, "passwd", "-d", "root"])
        run.run("apt clean", ["chroot", tmp, "apt-get", "clean"])
    atomic_write_text(tmp / ".testboxctl-base", version + "\n")
    tmp.rename(base)


def _kernel_version(root: Path) -> str:
    versions = sorted(p.name for p in (root / "lib/modules").iterdir() if p.is_dir())
    if len(versions) != 1:
        raise BuildError(f"expected one kernel in {root}/lib/modules, found {versions or 'none'}")
    return versions[0]


def _project_dependencies(project_dir: Path) -> list[str]:
    with (project_dir / "pyproject.toml").open("rb") as f:
        deps: list[str] = tomllib.load(f)["project"]["dependencies"]
    return deps


def _wheels(settings: BuildSettings, run: _Runner) -> Path:
    """Dependency wheels for the root's python (cp311, manylinux), downloaded on the host."""
    deps = _project_dependencies(settings.project_dir)
    wheels = settings.cache / f"wheels-{_sha256(*deps)[:16]}"
    if not (wheels / ".complete").exists():
        wheels.mkdir(parents=True, exist_ok=True)
        platforms = [a for p in PLATFORMS for a in ("--platform", p)]
        run.run(
            "download dependency wheels",
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "-d",
                wheels,
                "--only-binary=:all:",
                *PYTHON_TAGS,
                *platforms,
                *deps,
            ],
        )
        (wheels / ".complete").touch()
    return wheels


def _project_sources_hash(project_dir: Path) -> str:
    paths = [project_dir / name for name in SOURCE_FILES]
    for package in SOURCE_PACKAGES:
        paths += sorted(
            p
            for p in (project_dir / package).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        )
    return _sha256(*(str(p.relative_to(project_dir)).encode() + p.read_bytes() for p in paths))


def _install_project(root: Path, settings: BuildSettings, wheels: Path, run: _Runner) -> None:
    staging = root / "tmp/testbox-wheels"
    shutil.copytree(wheels, staging)
    # From a clean copy of exactly the hashed sources: an in-tree build would pick up a stale
    # build/ directory and leave one behind in the checkout.
    with tempfile.TemporaryDirectory(prefix="testbox-src.") as tmp:
        src = Path(tmp)
        for name in SOURCE_FILES:
            shutil.copy2(settings.project_dir / name, src / name)
        for package in SOURCE_PACKAGES:
            shutil.copytree(
                settings.project_dir / package,
                src / package,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            )
        run.run(
            "build the project wheel",
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", staging, src],
        )
    with _chroot_mounts(root, run):
        run.run("create the venv", ["chroot", root, "python3", "-m", "venv", VENV])
        run.run(
            "install the project into the venv",
            [
                "chroot",
                root,
                f"{VENV}/bin/pip",
                "install",
                "-q",
                "--no-index",
                "--find-links",
                "/tmp/testbox-wheels",
                "testboxctl",
            ],
        )
        for tool in ("testbox-maintenance", "testboxctl"):
            link = root / "usr/local/bin" / tool
            link.unlink(missing_ok=True)
            link.symlink_to(f"{VENV}/bin/{tool}")
        units = sorted(
            root.glob(f"{VENV.lstrip('/')}/lib/python3*/site-packages/onbox/systemd/{UNIT}")
        )
        if not units:
            raise BuildError(f"the installed project has no onbox/systemd/{UNIT} to enable")
        shutil.copy2(units[0], root / "etc/systemd/system" / UNIT)
        run.run(f"enable {UNIT}", ["chroot", root, "systemctl", "enable", UNIT])
    shutil.rmtree(staging)


def _copy_base(base: Path, new: Path, run: _Runner) -> None:
    """The root starts as the base. Hard links when on the same file system: the project layer
    only adds files (venv, links, unit), never writes an existing one, so the base stays as it
    was; and the root is exported read-only. A copy otherwise."""
    try:
        run.run("link the base", ["cp", "-al", base, new])
    except BuildError:
        shutil.rmtree(new, ignore_errors=True)
        run.run("copy the base", ["cp", "-a", "--reflink=auto", base, new])


def _require_root() -> None:
    if os.geteuid() != 0:
        raise BuildError("building the maintenance root needs root (debootstrap, chroot, mount)")


def _refuse_foreign_out(out: Path) -> None:
    """Checked before anything is built: --out is replaced wholesale at the end."""
    if out.exists() and not out.is_dir():
        raise BuildError(f"--out {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / STAMP).exists():
        raise BuildError(
            f"--out {out}: not empty and not a maintenance root built by testboxctl "
            f"(no {STAMP}); refusing to replace it"
        )


def _replace_root(out: Path, new: Path) -> None:
    """Swap the freshly built root in; only ever deletes a directory this builder made."""
    _refuse_foreign_out(out)
    if out.exists():
        old = out.with_name(out.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        out.rename(old)
        new.rename(out)
        shutil.rmtree(old)
    else:
        new.rename(out)


def install_boot_files(root: Path, tftp_root: Path) -> list[Path]:
    """Kernel and initrd to `<tftp_root>/maintenance-boot/`, versioned and generic names.

    The TFTP share is written through `onbox.shareio` like every share write: a link planted
    at `maintenance-boot` (any box can write the share) is refused, never written through."""
    version = _kernel_version(root)
    written = []
    try:
        with Share(tftp_root) as tftp:
            for kind in ("vmlinuz", "initrd.img"):
                data = (root / "boot" / f"{kind}-{version}").read_bytes()
                for name in (f"{kind}-{version}", kind):
                    tftp.write_atomic(f"{BOOT_DIR}/{name}", data, create_dirs=True)
                    written.append(tftp_root / BOOT_DIR / name)
    except ShareAccessError as exc:
        raise BuildError(f"cannot install the boot files: {exc.message}") from None
    return written


def build_maintenance_root(
    settings: BuildSettings, tftp_root: Path | None, log: Log = lambda _: None
) -> BuildReport:
    """Build (or reuse) the base and the root, then install the boot files if asked."""
    _refuse_foreign_out(settings.out)
    settings.cache.mkdir(parents=True, exist_ok=True)
    # One build at a time per cache (two CI jobs, parallel test workers): the second waits and
    # then finds everything built.
    with (settings.cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(settings, tftp_root, log)


KEPT_BASES = 3


def _prune_bases(cache: Path, keep: Path) -> None:
    """Roots are hard-linked copies, independent of their base: older bases only take space.
    The most recently used few are kept, not just the newest: several checkouts (branches of
    one machine, CI jobs) sharing a cache may want different bases, and removing each other's
    would make every build a cold one."""
    others = sorted(
        (
            p
            for p in cache.glob("base-*")
            if p != keep and p.is_dir() and not p.name.endswith(".tmp")
        ),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for stale in others[KEPT_BASES - 1 :]:
        shutil.rmtree(stale)


def _build_locked(settings: BuildSettings, tftp_root: Path | None, log: Log) -> BuildReport:
    (settings.cache / "build.log").write_text("")  # the log of this build only
    run = _Runner(settings.cache / "build.log", log)
    kernel_deb = _kernel_deb(settings, run)
    base_key = _base_key(settings, kernel_deb)
    base = settings.cache / f"base-{base_key[:16]}"
    base_reused = base.exists()
    if not base_reused:
        _require_root()
        _build_base(settings, kernel_deb, base, run)
        _prune_bases(settings.cache, keep=base)
    else:
        os.utime(base)  # "recently used", for _prune_bases
    wheels = _wheels(settings, run)
    root_key = _sha256(
        base_key,
        *sorted(p.name for p in wheels.glob("*.whl")),
        _project_sources_hash(settings.project_dir),
    )
    stamp = settings.out / STAMP
    root_reused = stamp.exists() and json.loads(stamp.read_text()).get("key") == root_key
    if not root_reused:
        _require_root()
        new = settings.out.with_name(settings.out.name + ".new")
        if new.exists():
            shutil.rmtree(new)
        settings.out.parent.mkdir(parents=True, exist_ok=True)
        _copy_base(base, new, run)
        _install_project(new, settings, wheels, run)
        atomic_write_text(
            new / STAMP,
            json.dumps({"key": root_key, "base": base.name, "kernel": kernel_deb.name}) + "\n",
        )
        _replace_root(settings.out, new)
    boot_files = install_boot_files(settings.out, tftp_root) if tftp_root is not None else []
    return BuildReport(
        root=settings.out,
        kernel_version=_kernel_version(settings.out),
        base_reused=base_reused,
        root_reused=root_reused,
        boot_files=boot_files,
    )
