"""`testbox-maintenance` against hostile shares: every entry it reads or writes, made wrong.

Every box writes the backup share as root, so whatever is on it may have been put there to make
the service of *another* box (or this one) write outside the share, hang, or crash. Each case
below arms a box the way the controller does, then replaces one entry with a symbolic link to a
tree outside the shares, a FIFO, a device node, a directory, an oversized or a malformed record,
and runs the real service (a subprocess, under a timeout: no hang). Every case asserts:

* nothing outside the two temp shares changed (the outside tree is hashed before and after,
  names, kinds, modes and contents; the links point into it);
* no traceback, exit 1, and one line that names the path and the problem;
* no disk was touched (the run is refresh-info or backup, and disk images are hashed too).

Full and read-only shares are real: a small tmpfs mounted for the test (root is needed; the
cases skip without it), filled up or remounted read-only.
"""

import hashlib
import json
import os
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from schema.layout import (
    BOX_LOG,
    BOX_OUTPUT_LOG,
    DISK_LIST,
    GLOBAL_LOG,
    INFO_TXT,
    PXE_CFG_DIR,
    REQUEST_FILE,
    RESULTS_DIR,
)
from schema.request import Request
from tests.service.lab import BoxLab, Run, make_disk, reboot_shims

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

MiB = 1 << 20
RUN_TIMEOUT = 60.0  # one service run is ~1-2 s; a hang is a failure, not a stuck suite
ROOT = os.geteuid() == 0


def tree_digest(top: Path) -> str:
    """Names, kinds, modes, link targets and contents of everything below `top`."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            st = path.lstat()
            h.update(f"{path.relative_to(top)}\0{stat.S_IFMT(st.st_mode)}\0{st.st_mode}\0".encode())
            if stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(path).encode())
            elif stat.S_ISREG(st.st_mode):
                h.update(path.read_bytes())
    return h.hexdigest()


@dataclass
class World:
    """Two temp shares, a box armed on them, and an outside tree the links point into."""

    lab: BoxLab
    outside: Path
    disk: Path
    request: Request
    append: str

    def run(self, *extra: str, reboot_shims: Path | None = None) -> Run:
        return self.lab.run(
            self.append,
            *extra,
            disks={"sda": self.disk},
            timeout=RUN_TIMEOUT,
            reboot_shims=reboot_shims,
        )

    def result_rel(self) -> str:
        return f"{RESULTS_DIR}/{self.request.request_id}.json"


def make_world(tmp_path: Path, action: str = "refresh-info") -> World:
    lab = BoxLab(tmp_path / "lab").make_shares()
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "file").write_text("precious\n")
    (outside / "dir" / "inner").write_text("precious too\n")
    request = lab.request(action, disks=["sda"])
    append = lab.arm(request)
    # Copies of the real records outside: a link to one would be accepted if followed.
    (outside / "request.json").write_bytes((lab.box_dir / REQUEST_FILE).read_bytes())
    (outside / "disk-devices.lst").write_text("sda\n")
    (outside / "config").write_bytes(lab.config.read_bytes())
    (tmp_path / "disks").mkdir()
    disk = make_disk(tmp_path / "disks" / "sda.img", MiB)
    return World(lab, outside, disk, request, append)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


def replace(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def symlink_to(target: str) -> Callable[[World, Path], None]:
    def make(w: World, path: Path) -> None:
        replace(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(w.outside / target)

    return make


def fifo(w: World, path: Path) -> None:
    replace(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)


def device(w: World, path: Path) -> None:
    """/dev/zero's twin: reading it unbounded would never end (MemoryError at best)."""
    if not ROOT:
        pytest.skip("mknod of a device node needs root")
    replace(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mknod(path, 0o644 | stat.S_IFCHR, os.makedev(1, 5))


def directory(w: World, path: Path) -> None:
    replace(path)
    (path / "inside").mkdir(parents=True)


def content(data: bytes) -> Callable[[World, Path], None]:
    def make(w: World, path: Path) -> None:
        replace(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    return make


def valid_result_copy(w: World, path: Path) -> None:
    """A real-looking earlier result outside, and the record a link to it."""
    record = {
        "request_id": w.request.request_id,
        "action": "refresh-info",
        "ip": w.lab.ip,
        "hostname": "x",
        "outcome": "failure",
        "attempt": 1,
        "started": "2026-01-01T00:00:00Z",
        "finished": "2026-01-01T00:00:01Z",
        "service_version": "0",
        "history": [],
    }
    (w.outside / "result.json").write_text(json.dumps(record))
    symlink_to("result.json")(w, path)


NESTED = b"[" * 100_000
NOT_UTF8 = b'{"request_id": "\xff\xfe"}'

# (case id, where relative to the box dir / tftp root, how, what the reason line says)
BOX_CASES: list[tuple[str, str, Callable[[World, Path], None], str]] = [
    ("request-symlink", REQUEST_FILE, symlink_to("request.json"), "is a symbolic link"),
    ("request-fifo", REQUEST_FILE, fifo, "not a regular file"),
    ("request-device", REQUEST_FILE, device, "not a regular file"),
    ("request-dir", REQUEST_FILE, directory, "is a directory where a file belongs"),
    ("request-oversized", REQUEST_FILE, content(b" " * (2 * MiB)), "larger than"),
    ("request-not-json", REQUEST_FILE, content(b"{not json"), "is not valid JSON"),
    ("request-nested", REQUEST_FILE, content(NESTED), "JSON"),
    ("request-not-utf8", REQUEST_FILE, content(NOT_UTF8), "UTF-8"),
    ("request-wrong-shape", REQUEST_FILE, content(b'{"request_id": {"a": 1}}'), "request_id"),
    ("disks-symlink", DISK_LIST, symlink_to("disk-devices.lst"), "is a symbolic link"),
    ("disks-fifo", DISK_LIST, fifo, "not a regular file"),
    ("disks-device", DISK_LIST, device, "not a regular file"),
    ("disks-dir", DISK_LIST, directory, "is a directory where a file belongs"),
    ("disks-oversized", DISK_LIST, content(b"sda\n" * 40_000), "larger than"),
    ("disks-not-utf8", DISK_LIST, content(b"\xff\xfe\n"), "not UTF-8"),
    ("disks-garbage", DISK_LIST, content(b"../../etc/passwd\n"), "is not a whole-disk name"),
    ("result-symlink", "RESULT", valid_result_copy, "is a symbolic link"),
    ("result-fifo", "RESULT", fifo, "not a regular file"),
    ("result-device", "RESULT", device, "not a regular file"),
    ("result-oversized", "RESULT", content(b" " * (2 * MiB)), "larger than"),
    ("result-nested", "RESULT", content(NESTED), "JSON"),
    ("result-error-object", "RESULT", content(b'{"error": {"a": 1}}'), "earlier result"),
    ("results-dir-symlink", RESULTS_DIR, symlink_to("dir"), "is a symbolic link"),
    ("box-log-symlink", BOX_LOG, symlink_to("file"), "is a symbolic link"),
    ("box-log-fifo", BOX_LOG, fifo, "not a regular file"),
    ("box-log-dir", BOX_LOG, directory, "cannot append"),
    ("output-log-symlink", BOX_OUTPUT_LOG, symlink_to("file"), "is a symbolic link"),
    ("output-log-device", BOX_OUTPUT_LOG, device, "not a regular file"),
]


def resolve(w: World, where: str) -> Path:
    return w.lab.box_dir / (w.result_rel() if where == "RESULT" else where)


def assert_one_line_reason(run: Run, words: str, path: Path) -> None:
    text = run.stdout + run.stderr
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if words in line and str(path) in line]
    assert lines, f"no line naming {path} and {words!r}:\n{text}"


@pytest.mark.parametrize(("where", "make", "words"), [c[1:] for c in BOX_CASES],
                         ids=[c[0] for c in BOX_CASES])  # fmt: skip
def test_hostile_box_entry(
    world: World, where: str, make: Callable[[World, Path], None], words: str
) -> None:
    path = resolve(world, where)
    make(world, path)
    before = tree_digest(world.outside)
    disk_before = hashlib.sha256(world.disk.read_bytes()).hexdigest()
    run = world.run()
    assert run.code == 1, run.stdout + run.stderr
    assert_one_line_reason(run, words, path)
    assert tree_digest(world.outside) == before
    assert hashlib.sha256(world.disk.read_bytes()).hexdigest() == disk_before
    # Nothing was done for the request: no info collected (except where a log broke, the
    # info is collected only after the logs are checked, so never).
    assert (
        not (world.lab.box_dir / INFO_TXT).exists() or (world.lab.box_dir / INFO_TXT).is_symlink()
    )


def test_global_log_symlink(world: World) -> None:
    path = world.lab.backup / GLOBAL_LOG
    symlink_to("file")(world, path)
    before = tree_digest(world.outside)
    run = world.run()
    assert run.code == 1
    assert_one_line_reason(run, "is a symbolic link", path)
    assert tree_digest(world.outside) == before


def test_box_directory_symlink_falls_back_to_local_boot(world: World) -> None:
    """No box directory, no result: the service removes its own config (no loop)."""
    shutil.copytree(world.lab.box_dir, world.outside / "boxcopy")
    shutil.rmtree(world.lab.box_dir)
    world.lab.box_dir.symlink_to(world.outside / "boxcopy")
    before = tree_digest(world.outside)
    run = world.run()
    assert run.code == 1
    assert_one_line_reason(run, "is a symbolic link", world.lab.box_dir)
    assert tree_digest(world.outside) == before
    assert not world.lab.config.exists()
    assert "next boot is from the local disk" in run.stderr


def test_result_directory_in_the_way_falls_back_to_local_boot(world: World) -> None:
    path = resolve(world, "RESULT")
    directory(world, path)
    run = world.run()
    assert run.code == 1
    assert_one_line_reason(run, "is a directory where a file belongs", path)
    assert not world.lab.config.exists()
    assert "cannot write the result record" in run.stderr


TFTP_CASES: list[tuple[str, Callable[[World, Path], None], str]] = [
    ("config-symlink", symlink_to("config"), "is a symbolic link"),
    ("config-fifo", fifo, "not a regular file"),
    ("config-dir", directory, "is a directory where a file belongs"),
]


@pytest.mark.parametrize(("make", "words"), [c[1:] for c in TFTP_CASES],
                         ids=[c[0] for c in TFTP_CASES])  # fmt: skip
def test_hostile_pxe_config(world: World, make: Callable[[World, Path], None], words: str) -> None:
    make(world, world.lab.config)
    before = tree_digest(world.outside)
    run = world.run()
    assert run.code == 1
    assert_one_line_reason(run, words, world.lab.config)
    assert tree_digest(world.outside) == before
    assert os.path.lexists(world.lab.config)  # not removed through a link either


def test_pxelinux_cfg_dir_symlink(world: World) -> None:
    cfg_dir = world.lab.tftp / PXE_CFG_DIR
    shutil.copytree(cfg_dir, world.outside / "cfgcopy")
    shutil.rmtree(cfg_dir)
    cfg_dir.symlink_to(world.outside / "cfgcopy")
    before = tree_digest(world.outside)
    run = world.run()
    assert run.code == 1
    assert_one_line_reason(run, "is a symbolic link", cfg_dir)
    assert tree_digest(world.outside) == before


def test_mac_config_symlink_is_neither_read_nor_removed(world: World) -> None:
    """A `01-<mac>` link to a file naming this request: a successful run leaves it alone."""
    mac = world.lab.tftp / PXE_CFG_DIR / "01-52-54-00-12-34-56"
    mac.symlink_to(world.outside / "config")
    before = tree_digest(world.outside)
    run = world.run()
    assert run.code == 0, run.stderr
    assert tree_digest(world.outside) == before
    assert mac.is_symlink()
    assert not world.lab.config.exists()


def test_request_not_the_armed_one_is_refused(world: World) -> None:
    other = world.lab.request("refresh-info", disks=["sda"], token="another")
    world.lab.arm(other)  # request.json now names another id; the boot's command line does not
    run = world.run()
    assert run.code == 1
    path = world.lab.box_dir / REQUEST_FILE
    assert_one_line_reason(run, "does not match this boot's request", path)
    assert not (world.lab.box_dir / INFO_TXT).exists()


def test_info_file_symlink_is_replaced_not_followed(world: World) -> None:
    """Files the service only writes: the atomic rename replaces a link, never writes through."""
    (world.lab.box_dir / INFO_TXT).symlink_to(world.outside / "file")
    before = tree_digest(world.outside)
    run = world.run()
    assert run.code == 0, run.stderr
    assert tree_digest(world.outside) == before
    assert (world.lab.box_dir / INFO_TXT).is_file()
    assert not (world.lab.box_dir / INFO_TXT).is_symlink()


# --- full and read-only shares ---------------------------------------------------------------


@pytest.fixture
def small_backup(tmp_path: Path) -> Iterator[World]:
    """A world whose backup share is a 4 MiB tmpfs (root only); unmounted after."""
    if not ROOT:
        pytest.skip("mounting a small tmpfs needs root")
    w = make_world(tmp_path)
    saved = tmp_path / "saved-backup"
    os.rename(w.lab.backup, saved)
    w.lab.backup.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "testbox-hostile", w.lab.backup],
        check=True,
    )
    try:
        subprocess.run(["cp", "-a", f"{saved}/.", str(w.lab.backup)], check=True)
        yield w
    finally:
        subprocess.run(["umount", "-l", str(w.lab.backup)], check=False)


def fill(directory: Path) -> None:
    with (directory / "filler").open("wb") as f:
        try:
            while True:
                f.write(bytes(64 * 1024))
                f.flush()
        except OSError:
            pass


@pytest.mark.parametrize("how", ["full", "read-only"])
def test_unwritable_backup_share_falls_back_to_local_boot(
    small_backup: World, tmp_path: Path, how: str
) -> None:
    """The result cannot be written: the service removes its own config and says so, so the
    box's next boot is its local disk instead of an endless run of maintenance boots."""
    w = small_backup
    if how == "full":
        fill(w.lab.backup)
        words = "no space left on the share"
    else:
        subprocess.run(["mount", "-o", "remount,ro", str(w.lab.backup)], check=True)
        words = "the share is read-only"
    shims = reboot_shims(tmp_path / "shims")
    run = w.run(reboot_shims=shims)
    text = run.stdout + run.stderr
    assert run.code == 1, text
    assert "Traceback" not in text
    assert words in text
    assert "no result recorded: PXE config removed" in text
    assert not w.lab.config.exists()
    assert "reboot" in (shims / "calls").read_text()  # to the local disk, not a retry pause


def test_unwritable_backup_and_tftp_shares_stop_instead_of_looping(
    small_backup: World, tmp_path: Path
) -> None:
    """Neither a result nor the config removal is possible: the service does not reboot."""
    w = small_backup
    subprocess.run(["mount", "-o", "remount,ro", str(w.lab.backup)], check=True)
    w.lab.config.parent.chmod(0o555)  # root ignores modes: use a read-only bind instead
    subprocess.run(["mount", "--bind", str(w.lab.tftp), str(w.lab.tftp)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(w.lab.tftp)], check=True)
        shims = reboot_shims(tmp_path / "shims")
        run = w.run(reboot_shims=shims)
    finally:
        subprocess.run(["umount", "-l", str(w.lab.tftp)], check=False)
        w.lab.config.parent.chmod(0o755)
    text = run.stdout + run.stderr
    assert run.code == 1, text
    assert "Traceback" not in text
    assert "not rebooting" in text
    assert w.lab.config.exists()
    assert not (shims / "calls").exists()
