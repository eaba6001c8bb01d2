"""The image store on a hostile backup share: links, FIFOs, malformed records, a killed gc.

Each class of hostile entry is built in a temp share next to an "outside" tree (what a link
points at). Every command (`testboxctl images/verify/gc/import-legacy` in process, and the
engine's backup/restore) must leave the outside tree exactly as it was, never raise anything
but a one-line `OnboxError`, never hang (each step runs under an alarm), and name the box and
path of what it refused. The rest of the share keeps working.
"""

import gzip
import hashlib
import json
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from controller.cli import run
from onbox.errors import OnboxError
from onbox.imaging.backup import backup_disks
from onbox.imaging.gc import collect_garbage
from onbox.imaging.restore import restore_image
from onbox.imaging.verify import verify_images
from onbox.store import ImageStore, open_store
from tests.hostile.guards import deadline, snapshot

IP = "10.9.9.9"
OTHER = "10.9.9.10"
CS = 4096
OLD = 1_600_000_000  # an mtime well past every grace period
T = TypeVar("T")


class Lab:
    def __init__(self, tmp: Path) -> None:
        self.share = tmp / "backup"
        self.share.mkdir()
        (self.share / "testbox-backup").touch()
        self.outside = tmp / "outside"
        self.outside.mkdir()
        # What a hostile link points at: files the store's names would match.
        for sub in ("", "ab", "images/20260101T000000Z-aaaaaa"):
            d = self.outside / sub
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{'ab' * 32}.zst").write_bytes(b"outside chunk")
            (d / "victim.lease").write_text("a" * 64 + "\n")
            (d / ".victim.tmp").write_text("temp")
            (d / "commit.json").write_text("{}")
            (d / "sda.gz").write_bytes(gzip.compress(b"host secret" * 1000))
            os.utime(d, (OLD, OLD))
            for f in d.iterdir():
                os.utime(f, (OLD, OLD), follow_symlinks=False)
        self.before = snapshot(self.outside)
        self.disk = tmp / "sda.img"
        rng = random.Random(3)
        self.data = rng.randbytes(4 * CS) + bytes(2 * CS) + b"text " * 1000
        self.disk.write_bytes(self.data)
        self.target = tmp / "target.img"

    def store(self) -> ImageStore:
        return open_store(self.share)

    def backup(self, ip: str = IP) -> str:
        return backup_disks(self.store(), ip, {"sda": self.disk}, chunk_size=CS).image_id

    def outside_unchanged(self) -> None:
        assert snapshot(self.outside) == self.before

    def _clear(self, rel: str) -> Path:
        """Make room at `rel` for a hostile entry (a directory there is kept aside, not lost)."""
        path = self.share / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir() and not path.is_symlink():
            os.rename(path, path.with_name(path.name + ".real"))
        elif path.exists() or path.is_symlink():
            path.unlink()
        return path

    def link(self, rel: str, to: Path) -> Path:
        path = self._clear(rel)
        path.symlink_to(to)
        os.utime(path, (OLD, OLD), follow_symlinks=False)
        return path

    def fifo(self, rel: str) -> Path:
        path = self._clear(rel)
        os.mkfifo(path)
        return path

    def age_everything(self) -> None:
        for directory, dirs, files in os.walk(self.share):
            for name in dirs + files:
                os.utime(Path(directory, name), (OLD, OLD), follow_symlinks=False)


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run testboxctl in process; any exception but a mapped one fails the test (traceback)."""
    with deadline(20):
        code = run(args)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def engine(fn: Callable[[], T]) -> T | OnboxError:
    """Run an engine call: it returns or raises a one-line OnboxError, nothing else."""
    with deadline(20):
        try:
            return fn()
        except OnboxError as exc:
            assert "\n" not in exc.message, exc.message
            return exc


def every_command(lab: Lab, capsys: pytest.CaptureFixture[str]) -> str:
    """All store commands against the share; returns their combined output."""
    root = str(lab.share)
    out = []
    for args in (
        ["images", "--backup-root", root],
        ["verify", "--backup-root", root],
        ["gc", "--backup-root", root, "--grace", "0"],
        ["import-legacy", IP, "--backup-root", root],
        ["gc", "--backup-root", root, "--grace", "0"],
    ):
        code, text = cli(args, capsys)
        assert code in (0, 1), (args, code, text)
        assert "Traceback" not in text
        out.append(text)
    lab.target.write_bytes(bytes(len(lab.data)))
    result = engine(lambda: restore_image(lab.store(), IP, "latest", {"sda": lab.target}))
    out.append(str(result))
    lab.outside_unchanged()
    return "\n".join(out)


# --- links in every place of the store -----------------------------------------------------

LINK_PLACES = [
    "{ip}",  # the box directory
    "{ip}/images",
    "{ip}/images/{image}",
    "{ip}/images/{image}/commit.json",
    "{ip}/images/{image}/sda.manifest.json",
    "store/chunks/{xx}",
    "store/chunks/{xx}/{chunk}.zst",
    "store/leases",
    "store/trash",
    "store/trash/gc-1-dead",
    "store/verify",
    "store/config.json",
    "{ip}/sda.gz",
]


@pytest.mark.parametrize("place", LINK_PLACES)
def test_link_anywhere_is_never_followed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], place: str
) -> None:
    lab = Lab(tmp_path)
    image = lab.backup()
    other = lab.backup(OTHER)
    chunk = next(c for c in lab.store().read_manifest(IP, image, "sda").chunks if c)
    rel = place.format(ip=IP, image=image, xx=chunk[:2], chunk=chunk)
    target = lab.outside if place.count("/") < 3 or "{xx}" in place else lab.outside / "commit.json"
    if place.endswith(".zst"):
        target = lab.outside / f"{'ab' * 32}.zst"
    if place.endswith("sda.gz"):
        target = lab.outside / "sda.gz"
    if place == "store/trash":
        (lab.outside / "gc-1-dead").mkdir(exist_ok=True)
    lab.link(rel, target)
    lab.age_everything()
    before = snapshot(lab.outside)
    lab.before = before
    text = every_command(lab, capsys)
    lab.outside_unchanged()
    if place == "store/config.json":
        # The store's format cannot be known: every command refuses the store, one line.
        assert text.count("config.json: is a symbolic link") >= 5, text
        return
    if place not in ("store/trash/gc-1-dead", "store/verify", "store/leases", "store/trash"):
        # The refusal names the path (the box's where it is the box's).
        assert "symbolic link" in text, text
    # The other box is untouched by this box's damage: its image still verifies and restores.
    assert verify_images(lab.store(), OTHER, other, record=False).ok or place.startswith("store/")
    lab.target.write_bytes(bytes(len(lab.data)))
    if not place.startswith("store/chunks"):
        restore_image(lab.store(), OTHER, other, {"sda": lab.target})
        assert lab.target.read_bytes() == lab.data


# --- FIFOs where files belong ------------------------------------------------------------

FIFO_PLACES = [
    "{ip}/images/{image}/commit.json",
    "{ip}/images/{image}/sda.manifest.json",
    "store/chunks/{xx}/{chunk}.zst",
    "store/leases/20990101T000000Z-ffffff.lease",
    "store/config.json",
    "store/verify/verify.json",
    "{ip}/sda.gz",
]


@pytest.mark.parametrize("place", FIFO_PLACES)
def test_fifo_never_hangs(tmp_path: Path, capsys: pytest.CaptureFixture[str], place: str) -> None:
    lab = Lab(tmp_path)
    image = lab.backup()
    chunk = next(c for c in lab.store().read_manifest(IP, image, "sda").chunks if c)
    lab.fifo(place.format(ip=IP, image=image, xx=chunk[:2], chunk=chunk))
    text = every_command(lab, capsys)
    if place not in ("store/leases/20990101T000000Z-ffffff.lease", "store/verify/verify.json"):
        # (a lease FIFO is skipped with a gc problem line; verify replaces its record's name)
        assert "FIFO" in text or "not a regular file" in text, text


# --- malformed and lying records ----------------------------------------------------------


def _commit_path(lab: Lab, image: str) -> Path:
    return lab.share / IP / "images" / image / "commit.json"


def _rewrite_commit(lab: Lab, image: str, change: Callable[[dict[str, object]], None]) -> None:
    path = _commit_path(lab, image)
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def _short_manifest(lab: Lab, image: str) -> None:
    """A manifest listing fewer chunks than its disk needs, its hash updated in the commit."""
    mpath = lab.share / IP / "images" / image / "sda.manifest.json"
    manifest = json.loads(mpath.read_text())
    manifest["chunks"] = manifest["chunks"][:2]
    data = json.dumps(manifest).encode()
    mpath.write_bytes(data)

    def fix(doc: dict[str, object]) -> None:
        disks = doc["disks"]
        assert isinstance(disks, list)
        disks[0]["manifest_sha256"] = hashlib.sha256(data).hexdigest()

    _rewrite_commit(lab, image, fix)


def _commit_is_dir(lab: Lab, image: str) -> None:
    _commit_path(lab, image).unlink()
    _commit_path(lab, image).mkdir()


RECORD_DAMAGE: dict[str, Callable[[Lab, str, str], object]] = {
    "id-differs": lambda lab, new, old: _rewrite_commit(lab, new, lambda d: d.update(id=old)),
    "naive-time": lambda lab, new, old: _rewrite_commit(
        lab, new, lambda d: d.update(created="2026-11-25T20:00:00")
    ),
    "short-manifest": lambda lab, new, old: _short_manifest(lab, new),
    "manifest-schema": lambda lab, new, old: (
        lab.share / IP / "images" / new / "sda.manifest.json"
    ).write_text('{"format": 1, "disk": "sda", "chunks": "nope"}'),
    "commit-is-dir": lambda lab, new, old: _commit_is_dir(lab, new),
    "commit-oversized": lambda lab, new, old: _commit_path(lab, new).write_bytes(
        b" " * (2 << 20) + b"{}"
    ),
    "commit-nested": lambda lab, new, old: _commit_path(lab, new).write_bytes(b"[" * 100_000),
    "commit-garbage": lambda lab, new, old: _commit_path(lab, new).write_bytes(b"\xff\xfe"),
}


@pytest.mark.parametrize("damage", sorted(RECORD_DAMAGE))
def test_damaged_newest_image_never_restored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    """`restore latest` skips the damaged newest image (and says so); verify names it."""
    lab = Lab(tmp_path)
    old = lab.backup()
    lab.disk.write_bytes(b"newer content " * 3000)
    new = lab.backup()
    RECORD_DAMAGE[damage](lab, new, old)
    root = str(lab.share)
    code, text = cli(["verify", "--backup-root", root], capsys)
    assert code == 1 and f"{IP}" in text and new in text, text
    assert "Traceback" not in text
    code, text = cli(["images", "--backup-root", root], capsys)
    assert code == 0 and old in text, text
    lab.target.write_bytes(bytes(len(lab.data)))
    with deadline(20):
        report = restore_image(lab.store(), IP, "latest", {"sda": lab.target})
    assert report.image_id == old
    assert any(new in n and "damaged" in n for n in report.notices), report.notices
    assert lab.target.read_bytes() == lab.data
    # Named explicitly, the damaged image is refused (one line), the target untouched.
    result = engine(lambda: restore_image(lab.store(), IP, new, {"sda": lab.target}))
    assert isinstance(result, OnboxError) and new in result.message
    assert lab.target.read_bytes() == lab.data
    # gc reports it and keeps going; the good image keeps every chunk.
    code, text = cli(["gc", "--backup-root", root, "--grace", "0"], capsys)
    assert code == 0, text
    assert verify_images(lab.store(), IP, old, record=False).ok


def test_non_utf8_lease_still_protects_its_chunks(tmp_path: Path) -> None:
    lab = Lab(tmp_path)
    image = lab.backup()
    store = lab.store()
    chunks = sorted(store.referenced_chunks())
    store.delete_image(IP, image)
    lease = lab.share / "store" / "leases" / "20990101T000000Z-ffffff.lease"
    lease.parent.mkdir(exist_ok=True)
    lease.write_bytes(b"\xff\xfe garbage\n" + chunks[0].encode() + b"\n\x00\x01")
    with deadline(20):
        report = collect_garbage(store, dry_run=False, grace=0)
    assert store.has_chunk(chunks[0])
    assert any("lease" in p for p in report.problems), report.problems


@pytest.mark.parametrize("content", [b"", gzip.compress(b"")], ids=["0-byte", "empty-gzip"])
def test_empty_legacy_image_fails_verify_and_restore(tmp_path: Path, content: bytes) -> None:
    lab = Lab(tmp_path)
    box = lab.share / IP
    box.mkdir()
    (box / "sda.gz").write_bytes(content)
    store = lab.store()
    report = verify_images(store, record=False)
    assert not report.ok and "no data" in str(report.problems[0])
    lab.target.write_bytes(b"keep" * 100)
    result = engine(lambda: restore_image(store, IP, "legacy", {"sda": lab.target}))
    assert isinstance(result, OnboxError) and "sda.gz" in result.message
    assert lab.target.read_bytes() == b"keep" * 100
    result = engine(lambda: restore_image(store, IP, "latest", {"sda": lab.target}))
    assert isinstance(result, OnboxError)
    assert lab.target.read_bytes() == b"keep" * 100


def test_planted_chunk_is_caught_by_the_next_backup(tmp_path: Path) -> None:
    """A box plants garbage under the name of another disk's chunk: the backup that would
    dedup against it checks, replaces it and says so; the image restores byte for byte."""
    lab = Lab(tmp_path)
    store = lab.store()
    from onbox.imaging import codec

    victim = lab.data[:CS]
    cid = codec.chunk_id(victim)
    store.put_chunk(cid, codec.compress(b"planted by another box" * 100))
    store.flush()
    report = backup_disks(lab.store(), IP, {"sda": lab.disk}, chunk_size=CS)
    assert any(cid in n and "replaced" in n for n in report.notices), report.notices
    lab.target.write_bytes(bytes(len(lab.data)))
    restore_image(lab.store(), IP, report.image_id, {"sda": lab.target})
    assert lab.target.read_bytes() == lab.data


# --- gc killed at every step: no committed image loses a chunk ------------------------------


class Killed(BaseException):
    """Stands in for SIGKILL: nothing after the hook runs, no cleanup code is reached."""


@pytest.mark.parametrize("phase", ["restored", "listed", "marked", "trashing", "trashed"])
def test_gc_killed_while_a_backup_dedups_against_trashed_chunks(tmp_path: Path, phase: str) -> None:
    lab = Lab(tmp_path)
    first = lab.backup()
    store = lab.store()
    store.delete_image(IP, first)  # its chunks are garbage now, old enough to collect
    lab.age_everything()
    committed: list[str] = []

    def hook(at: str) -> None:
        if at == "marked":
            # A backup of the same disk runs now: it dedups against every marked chunk and
            # commits before gc moves them to its trash.
            committed.append(lab.backup())
        if at == phase or (phase in ("restored", "listed", "marked") and at == "trashed"):
            raise Killed

    with pytest.raises(Killed):
        collect_garbage(lab.store(), dry_run=False, grace=0, hook=hook)
    store = lab.store()
    if committed:
        # Until the next gc, readers find the chunks in the dead run's trash.
        assert verify_images(store, record=False).ok
    report = collect_garbage(store, dry_run=False, grace=0)
    assert report.problems == []
    assert not store.trash_runs()
    assert verify_images(store, record=False).ok
    for image in committed:
        lab.target.write_bytes(bytes(len(lab.data)))
        restore_image(store, IP, image, {"sda": lab.target})
        assert lab.target.read_bytes() == lab.data
    lab.outside_unchanged()


GC_CHILD = """
import sys, time
from pathlib import Path
from onbox.imaging.gc import collect_garbage
from onbox.store import open_store

def hook(at):
    if at in ("marked", "trashed"):
        print(at, flush=True)
        if at == "marked":
            sys.stdin.readline()  # the parent runs a backup here
        else:
            time.sleep(60)  # killed here
collect_garbage(open_store(Path(sys.argv[1])), dry_run=False, grace=0, hook=hook)
"""


@pytest.mark.slow
def test_gc_sigkilled_after_trashing_chunks_a_backup_committed(tmp_path: Path) -> None:
    """A real SIGKILL: gc marks, a backup dedups and commits, gc trashes, gc is killed."""
    import subprocess
    import sys

    lab = Lab(tmp_path)
    store = lab.store()
    store.delete_image(IP, lab.backup())
    lab.age_everything()
    child = subprocess.Popen(
        [sys.executable, "-c", GC_CHILD, str(lab.share)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        with deadline(60):
            assert child.stdout.readline().strip() == "marked"
            image = lab.backup()  # dedups against every chunk gc has marked
            child.stdin.write("go\n")
            child.stdin.flush()
            assert child.stdout.readline().strip() == "trashed"
    finally:
        child.kill()
        child.wait(timeout=30)
    store = lab.store()
    assert store.trash_runs(), "the killed gc left its trash"
    assert verify_images(store, record=False).ok  # readers find the chunks in the trash
    report = collect_garbage(store, dry_run=False, grace=0)
    assert report.trash_restored > 0 and not store.trash_runs()
    assert all(store.stat_chunk(c) for c in store.referenced_chunks())
    lab.target.write_bytes(bytes(len(lab.data)))
    restore_image(store, IP, image, {"sda": lab.target})
    assert lab.target.read_bytes() == lab.data
    lab.outside_unchanged()
