"""observe(): markers first, unreadable is an error (never "empty"), what it reads, fingerprint."""

import os
import shutil
from pathlib import Path

import pytest

from controller.core.plan import make_plan
from controller.errors import ShareError
from controller.io.observe import observe
from schema.layout import BACKUP_MARKER, DEFAULT_CONFIG, PXE_CFG_DIR
from tests.lab_builder import (
    T0,
    add_image,
    desired,
    make_shares,
    managed_config,
    snapshot,
    write_config,
    write_result,
)


@pytest.mark.parametrize(
    "remove", [f"backup/{BACKUP_MARKER}", f"tftp/{PXE_CFG_DIR}/{DEFAULT_CONFIG}", "backup", "tftp"]
)
def test_missing_marker_or_share_is_a_share_error(tmp_path: Path, remove: str) -> None:
    shares = make_shares(tmp_path)
    target = tmp_path / remove
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink()
    with pytest.raises(ShareError, match="missing"):
        observe(shares)


@pytest.mark.parametrize("where", ["config", "request", "result"])
def test_a_link_is_never_read_and_is_a_problem_of_its_box(tmp_path: Path, where: str) -> None:
    shares = make_shares(tmp_path)
    secret = tmp_path / "secret"
    secret.write_text("root:x:0:0 host secret\n")
    box = shares.backup / "10.0.2.15"
    (box / "results").mkdir(parents=True)
    path = {
        "config": shares.tftp / PXE_CFG_DIR / "0A00020F",
        "request": box / "request.json",
        "result": box / "results" / "abcdefabcdef.json",
    }[where]
    os.symlink(secret, path)
    observed = observe(shares)
    assert "host secret" not in observed.model_dump_json()
    if where == "config":
        cfg = observed.configs["0A00020F"]
        assert not cfg.managed and cfg.content == "" and "symbolic link" in (cfg.problem or "")
    else:
        [problem] = observed.boxes["10.0.2.15"].problems
        rel = path.relative_to(shares.backup)
        assert problem == f"{rel}: is a symbolic link (never followed)"


def test_an_unlistable_share_is_an_error_not_empty(tmp_path: Path) -> None:
    shares = make_shares(tmp_path)
    cfg = shares.tftp / PXE_CFG_DIR
    shutil.rmtree(cfg)
    os.symlink(tmp_path, cfg)
    with pytest.raises(ShareError, match="symbolic link"):
        observe(shares)


def test_reads_configs_box_files_results_and_images(tmp_path: Path) -> None:
    shares = make_shares(tmp_path)
    state = desired({"name": "tb1", "ip": "10.0.2.15", "action": "backup"})
    name, content = managed_config(state, "tb1")
    write_config(shares, name, content)
    write_config(shares, "0A000299", "DEFAULT foreign\n")
    write_config(shares, ".0A000299.x1.tmp", "half-written temp file\n")
    write_result(shares, "10.0.2.15", "0123456789ab", "failure", 2)
    box = shares.backup / "10.0.2.15"
    (box / "tb1").write_text("")
    (box / "disk-devices.lst").write_text("sda\n")
    (box / "sda.raw.gz").write_bytes(b"\x1f\x8b")
    image = add_image(shares, "10.0.2.15", T0)
    (shares.backup / "not-an-ip").mkdir()

    before = snapshot(shares.tftp, shares.backup)
    observed = observe(shares, now=T0)
    assert snapshot(shares.tftp, shares.backup) == before  # reads only

    assert set(observed.configs) == {name, "0A000299"}
    assert observed.configs[name].managed and observed.configs[name].content == content
    assert not observed.configs["0A000299"].managed
    assert list(observed.boxes) == ["10.0.2.15"]
    seen = observed.boxes["10.0.2.15"]
    assert {"tb1", "disk-devices.lst", "sda.raw.gz"} <= seen.files
    assert seen.disk_list == "sda\n" and seen.request_json is None
    assert seen.results["0123456789ab"].outcome == "failure"
    assert seen.results["0123456789ab"].attempt == 2
    assert {i.id: i.kind for i in seen.images} == {"legacy": "legacy", image: "chunked"}
    assert observed.observed_at == T0


def test_corrupt_result_leaves_the_box_alone(tmp_path: Path) -> None:
    shares = make_shares(tmp_path)
    state = desired({"name": "tb1", "ip": "10.0.2.15", "action": "backup"})
    results = shares.backup / "10.0.2.15" / "results"
    results.mkdir(parents=True)
    (results / "0123456789ab.json").write_text("{not json")
    plan = make_plan(state, observe(shares))
    assert plan.operations == []
    [notice] = plan.notices
    assert notice.kind == "problem" and "0123456789ab.json" in notice.message


def test_fingerprint_follows_what_the_planner_reads(tmp_path: Path) -> None:
    shares = make_shares(tmp_path)
    box = shares.backup / "10.0.2.15"
    box.mkdir()
    first = observe(shares).fingerprint
    assert observe(shares).fingerprint == first
    # Boxes append to their logs all the time: not a reason to call a plan stale.
    (box / "maintenance.log").write_text("2026-11-25T12:00:00Z: 10.0.2.15: info: ping\n")
    assert observe(shares).fingerprint == first
    write_result(shares, "10.0.2.15", "0123456789ab", "success")
    assert observe(shares).fingerprint != first
