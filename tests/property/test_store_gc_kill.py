"""Property: backups, deletions, gc killed at any step (with a backup running inside it),
verify and restore, in any order, never leave a committed image with a missing or wrong chunk.

gc is "killed" by a hook that raises at a step boundary (`collect_garbage(hook=...)`): nothing
after that point runs, as with SIGKILL (the store's writes are atomic renames, so a kill inside
a step leaves the state of one boundary or the next; tests/unit/imaging/test_sigkill.py covers
real SIGKILLs of backups). A backup can also run at the boundary before the kill, which is the
interleaving that loses chunks without the dead-trash restore.
"""

import contextlib
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onbox.errors import OnboxError
from onbox.imaging.backup import backup_disks
from onbox.imaging.gc import collect_garbage
from onbox.imaging.restore import restore_image
from onbox.imaging.verify import verify_images
from onbox.store import ImageStore, open_store

CS = 1024
BOXES = ["10.0.0.1", "10.0.0.2"]
PHASES = ["restored", "listed", "marked", "trashing", "trashed", "rescued", None]
BLOCKS = [bytes([i]) * CS for i in range(1, 7)] + [bytes(CS)]


class Killed(BaseException):
    pass


disks = st.lists(st.integers(0, len(BLOCKS) - 1), min_size=1, max_size=6)
op = st.one_of(
    st.tuples(st.just("backup"), st.sampled_from(BOXES), disks),
    st.tuples(st.just("delete"), st.sampled_from(BOXES), st.booleans()),
    st.tuples(
        st.just("gc"),
        st.sampled_from(PHASES),  # where it is killed (None: runs to the end)
        st.one_of(
            st.none(), st.tuples(st.sampled_from(PHASES[:-1]), st.sampled_from(BOXES), disks)
        ),
    ),
    st.tuples(st.just("verify")),
    st.tuples(st.just("restore"), st.sampled_from(BOXES)),
)


def content(blocks: list[int]) -> bytes:
    return b"".join(BLOCKS[i] for i in blocks)


def check(store: ImageStore, images: dict[tuple[str, str], bytes], tmp: Path) -> None:
    report = verify_images(store, record=False)
    assert report.ok, [str(p) for p in report.problems[:3]]
    assert {(i.box_ip, i.id) for i in store.list_images()} == set(images)


@pytest.mark.slow
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(ops=st.lists(op, min_size=1, max_size=12))
def test_no_committed_image_loses_a_chunk(ops: list[Any]) -> None:

    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        root = tmp / "backup"
        root.mkdir()
        store = open_store(root)
        images: dict[tuple[str, str], bytes] = {}
        disk = tmp / "disk"

        def backup(box: str, blocks: list[int]) -> None:
            data = content(blocks)
            disk.write_bytes(data)
            report = backup_disks(open_store(root), box, {"sda": disk}, chunk_size=CS, workers=2)
            images[(box, report.image_id)] = data

        for step in ops:
            kind = step[0]
            if kind == "backup":
                backup(step[1], step[2])
            elif kind == "delete":
                mine = sorted(k for k in images if k[0] == step[1])
                if mine:
                    victim = mine[0] if step[2] else mine[-1]
                    store.delete_image(*victim)
                    del images[victim]
            elif kind == "gc":
                kill_at, during = step[1], step[2]

                def hook(at: str, kill_at: str | None = kill_at, during: Any = during) -> None:
                    if during is not None and at == during[0]:
                        backup(during[1], during[2])
                    if at == kill_at:
                        raise Killed

                with contextlib.suppress(Killed):
                    collect_garbage(open_store(root), dry_run=False, grace=0, hook=hook)
            elif kind == "verify":
                assert verify_images(store).ok
            elif kind == "restore":
                mine = sorted(k for k in images if k[0] == step[1])
                if mine:
                    target = tmp / "target"
                    target.write_bytes(b"\xee" * len(images[mine[-1]]))
                    try:
                        restore_image(store, step[1], mine[-1][1], {"sda": target}, workers=2)
                    except OnboxError as exc:
                        raise AssertionError(exc.message) from None
                    assert target.read_bytes() == images[mine[-1]]
            check(store, images, tmp)
        # A final, unkilled gc leaves no trash and every image whole.
        collect_garbage(open_store(root), dry_run=False, grace=0)
        assert not store.trash_runs()
        check(store, images, tmp)
