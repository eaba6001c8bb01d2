"""A scheduled backup through the whole loop (contract §3): nobody edits the desired file.

`backup_every: 2s`: after the first backup the box is idle with `next_backup_due`; once that
moment has passed, `reconcile` arms a scheduled `backup-again` (token from the due moment), the
box runs it, and the new image resets the schedule.
"""

import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.loop.conftest import Loop
from tests.loop.test_loop import MiB, arm, assert_done
from tests.service.lab import make_disk

pytestmark = pytest.mark.slow


def test_scheduled_backup_again_runs_end_to_end(loop: Loop, tmp_path: Path) -> None:
    disk = make_disk(tmp_path / "sda.img", 2 * MiB)
    arm(loop, "backup")
    assert loop.boot(disk).code == 0
    assert_done(loop)

    loop.want("none", extra=", schedule: {backup_every: 2s}")
    box = loop.status()
    due = datetime.fromisoformat(box["next_backup_due"])
    newest = datetime.fromisoformat(box["newest_backup"])
    # Due moments follow the newest image every 2 s (the first may already have passed).
    assert every_2s(due, newest)
    time.sleep(max(0.0, (due - datetime.now(due.tzinfo)).total_seconds()) + 0.2)

    done = loop.reconcile()
    assert done.code == 0, done.stderr
    assert "scheduled (backup_every 2s)" in done.stdout
    box = loop.status()
    assert box["state"] == "armed" and box["action"] == "backup-again"
    scheduled_rid = box["request_id"]
    assert loop.config.exists()
    assert f"testbox-request={scheduled_rid}" in loop.append_line()

    boot = loop.boot(disk)
    assert boot.code == 0, boot.stderr
    assert not loop.config.exists()  # the box removed its config: it booted its own disk
    box = loop.status()
    assert len(box["images"]) == 2
    assert box["last_result"]["request_id"] == scheduled_rid
    assert box["last_result"]["outcome"] == "success"
    # The new image is the schedule's new base.
    assert every_2s(
        datetime.fromisoformat(box["next_backup_due"]), datetime.fromisoformat(box["newest_backup"])
    )


def every_2s(due: datetime, newest: datetime) -> bool:
    seconds = (due - newest).total_seconds()
    return seconds >= 2 and abs(seconds / 2 - round(seconds / 2)) < 0.01
