"""What a box or a plan file cannot make testboxctl do (issue 8).

- A box that cannot record a result (share full or read-only) removes its own config and
  records nothing: the controller re-arms it at most `max_attempts` times, then the request is
  stalled and the box boots its own disk. No endless maintenance boot loop.
- An image dated in the future (a box with a wrong clock) never makes retention prune the real
  newest backup: retention refuses to act for that box and says why.
- `testboxctl apply PLAN` refuses a hand-edited plan (pruning the only image, an unmarked
  config with `init=/bin/sh`, overwriting the share marker, pointing at other shares) as a
  whole: nothing changes, one line per difference.
"""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schema.layout import BACKUP_MARKER, PXE_CFG_DIR
from tests.hostile.controller_lab import HEALTHY, VICTIM, ControllerLab
from tests.lab_builder import add_image, snapshot


def _box_boots_without_result(lab: ControllerLab) -> None:
    """What the on-box service does when it cannot write its result: remove its own config."""
    assert lab.config().is_file(), "the box was not armed"
    lab.config().unlink()


def test_a_box_that_never_records_a_result_stops_after_max_attempts_boots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lab = ControllerLab(tmp_path, max_attempts=2)
    boots = 0
    for _ in range(6):
        code, _, err = lab.reconcile(capsys)
        assert code == 0, err
        if not lab.config().exists():
            break
        _box_boots_without_result(lab)
        boots += 1
    assert boots == 2  # armed exactly max_attempts times, result or not
    assert not lab.config().exists() and lab.pending_ips(capsys) == set()
    assert json.loads((lab.box() / "armed.json").read_text()) == {
        "request_id": lab.rid(VICTIM),
        "arms": 2,
    }
    code, out, _ = lab.cli(capsys, "status", "-f", str(lab.desired), "--json")
    victim = next(b for b in json.loads(out)["boxes"] if b["ip"] == VICTIM)
    assert victim["state"] == "stalled"
    assert "armed 2/2 times without success (no result recorded)" in victim["reason"]
    # The healthy boxes were never disturbed (their configs stayed in place all along).
    assert all(lab.config(ip).is_file() for ip in HEALTHY)


def test_a_new_request_token_arms_again_after_a_stall(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lab = ControllerLab(tmp_path, max_attempts=1)
    lab.reconcile(capsys)
    _box_boots_without_result(lab)
    lab.reconcile(capsys)
    assert not lab.config().exists()
    document = json.loads(lab.desired.read_text())
    document["boxes"][0]["request"] = "retry-1"
    lab.desired.write_text(json.dumps(document))
    assert lab.reconcile(capsys)[0] == 0
    assert lab.config().is_file()
    assert json.loads((lab.box() / "armed.json").read_text())["arms"] == 1


def test_a_future_dated_image_stops_retention_for_that_box_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lab = ControllerLab(tmp_path)  # keep_last 1
    now = datetime.now(UTC)
    real = [add_image(lab.shares, VICTIM, now - timedelta(days=d), f"00000{d}") for d in (1, 2)]
    future = add_image(lab.shares, VICTIM, now + timedelta(days=400), "ffffff")
    healthy = [
        add_image(lab.shares, HEALTHY[0], now - timedelta(days=d), f"00000{d}") for d in (1, 2)
    ]
    code, out, err = lab.reconcile(capsys)
    assert code == 0, err
    assert f"image(s) {future} dated in the future" in out
    images = lab.box() / "images"
    assert sorted(p.name for p in images.iterdir()) == sorted([*real, future])  # nothing pruned
    # The healthy box's retention still runs: its older image goes.
    assert sorted(p.name for p in (lab.box(HEALTHY[0]) / "images").iterdir()) == [healthy[0]]


def _saved_plan(lab: ControllerLab, capsys: pytest.CaptureFixture[str], tmp: Path) -> Path:
    plan = tmp / "plan.json"
    code, _, err = lab.reconcile(capsys, "--dry-run", "--out", str(plan))
    assert code == 2, err
    return plan


def _edit(plan: Path, change: object) -> None:
    document = json.loads(plan.read_text())
    assert callable(change)
    change(document)
    plan.write_text(json.dumps(document))


def _op(document: dict, kind: str, ip: str | None = None) -> dict:  # type: ignore[type-arg]
    return next(
        op for op in document["operations"] if op["kind"] == kind and ip in (None, op["ip"])
    )


EDITS = {
    "unmarked-init-sh-config": lambda d: _op(d, "write-config").update(
        content="DEFAULT evil\nLABEL evil\n  KERNEL vmlinuz\n  APPEND init=/bin/sh\n"
    ),
    "overwrite-share-marker": lambda d: _op(d, "write-request").update(path=BACKUP_MARKER),
    "extra-prune-of-the-only-image": lambda d: d["operations"].append(
        {
            "kind": "prune-image",
            "share": "backup",
            "path": f"{VICTIM}/images/ONLY",
            "reason": "retention",
            "ip": VICTIM,
            "image_id": "ONLY",
        }
    ),
    "dropped-request-before-config": lambda d: d["operations"].remove(_op(d, "write-request")),
    "reordered": lambda d: d["operations"].reverse(),
    "other-tftp-root": lambda d: d.update(tftp_root=d["backup_root"]),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_apply_refuses_a_hand_edited_plan_as_a_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: str
) -> None:
    lab = ControllerLab(tmp_path)
    only = add_image(lab.shares, VICTIM, datetime.now(UTC) - timedelta(days=1), "000001")
    plan = _saved_plan(lab, capsys, tmp_path)
    _edit(plan, EDITS[edit])
    if edit == "extra-prune-of-the-only-image":
        _edit(
            plan,
            lambda d: d["operations"][-1].update(path=f"{VICTIM}/images/{only}", image_id=only),
        )
    before = snapshot(lab.shares.tftp, lab.shares.backup)
    code, _, err = lab.cli(
        capsys, "apply", str(plan), "-f", str(lab.desired), "--lock-timeout", "1"
    )
    assert code == 1
    lines = err.strip().splitlines()
    assert lines and all(line.startswith(f"testboxctl: error: {plan}: ") for line in lines), err
    assert "Traceback" not in err
    assert snapshot(lab.shares.tftp, lab.shares.backup) == before  # nothing changed
    assert (lab.box() / "images" / only).is_dir()


def test_apply_runs_an_honest_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab = ControllerLab(tmp_path)
    plan = _saved_plan(lab, capsys, tmp_path)
    code, _, err = lab.cli(capsys, "apply", str(plan), "-f", str(lab.desired))
    assert code == 0, err
    assert lab.pending_ips(capsys) == set()
    assert (lab.shares.tftp / PXE_CFG_DIR).is_dir()
