"""`testboxctl images | verify | gc | import-legacy` through `controller.cli.run` (in process)."""

import gzip
import json
import random
from pathlib import Path

import pytest

from onbox.imaging.backup import backup_disks
from onbox.imaging.restore import restore_image
from onbox.store import open_store
from onbox.store.base import ImageStore
from tests.cli.runner import CliResult, run_cli
from tests.unit.imaging.helpers import flip_byte

IP = "10.0.0.5"
LEGACY_IP = "10.0.0.6"
CS = 4096


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> CliResult:
    return run_cli(*args, env=env, cwd=cwd)


@pytest.fixture
def share(tmp_path: Path) -> Path:
    root = tmp_path / "backup"
    root.mkdir()
    (root / "testbox-backup").touch()
    return root


def two_images(share: Path, tmp_path: Path) -> tuple[ImageStore, list[str], bytes]:
    store = open_store(share)
    rng = random.Random(9)
    data = rng.randbytes(4 * CS) + bytes(2 * CS)
    disk = tmp_path / "sda.img"
    disk.write_bytes(data)
    a = backup_disks(store, IP, {"sda": disk}, chunk_size=CS).image_id
    disk.write_bytes(data[: 3 * CS] + rng.randbytes(CS) + bytes(2 * CS))
    b = backup_disks(store, IP, {"sda": disk}, chunk_size=CS).image_id
    return store, [a, b], data


def test_images_json_and_text(share: Path, tmp_path: Path) -> None:
    _, ids, _ = two_images(share, tmp_path)
    (share / LEGACY_IP).mkdir()
    (share / LEGACY_IP / "sda.raw.gz").write_bytes(gzip.compress(b"old" * 1000))
    result = run("images", "--backup-root", str(share), "--json")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)["images"]
    assert [i["id"] for i in listed if i["box_ip"] == IP] == ids
    assert [(i["id"], i["kind"]) for i in listed if i["box_ip"] == LEGACY_IP] == [
        ("legacy", "legacy")
    ]

    text = run("images", "--box", IP, env={"TESTBOX_BACKUP_ROOT": str(share)})
    assert text.returncode == 0, text.stderr
    assert all(i in text.stdout for i in ids) and "legacy" not in text.stdout


def test_desired_file_names_the_share(tmp_path: Path) -> None:
    assert run("init", "--lab", str(tmp_path / "lab")).returncode == 0
    result = run("images", "-f", str(tmp_path / "lab" / "desired.yaml"))
    assert (result.returncode, result.stdout.strip()) == (0, "no images")


def test_unmounted_share_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for command in (["images"], ["verify"], ["gc"], ["gc", "--dry-run"]):
        result = run(*command, "--backup-root", str(tmp_path / "empty"))
        assert result.returncode == 1
        assert "marker testbox-backup missing (share not mounted?)" in result.stderr
    assert list((tmp_path / "empty").iterdir()) == []


def test_verify_ok_then_damaged(share: Path, tmp_path: Path) -> None:
    store, ids, _ = two_images(share, tmp_path)
    ok = run("verify", "--backup-root", str(share))
    assert ok.returncode == 0 and ok.stdout.startswith("ok: 2 image(s)"), ok.stdout + ok.stderr

    chunk = store.read_manifest(IP, ids[0], "sda").chunks[1]
    assert chunk is not None
    flip_byte(store, chunk)
    bad = run("verify", "--backup-root", str(share))
    assert bad.returncode == 1
    # the chunk is shared by both images: each is named, with the offset
    for image_id in ids:
        assert f"{IP} image {image_id} disk sda offset {CS}: chunk {chunk} corrupt" in bad.stdout
    assert bad.stderr.startswith("testboxctl: error: verify: 2 bad chunk use(s)")

    for selector in (ids[1], f"{IP}/{ids[1]}", IP):
        one = run("verify", selector, "--backup-root", str(share))
        assert one.returncode == 1 and ids[1] in one.stdout, selector
    missing = run("verify", "20200101T000000Z-000000", "--backup-root", str(share))
    assert missing.returncode == 1 and "no image" in missing.stderr


def test_gc_dry_run_then_collect(share: Path, tmp_path: Path) -> None:
    store, ids, _ = two_images(share, tmp_path)
    store.delete_image(IP, ids[0])
    before = {s.id for s in store.chunk_stats()}

    dry = run("gc", "--dry-run", "--grace", "0", "--backup-root", str(share))
    assert dry.returncode == 0, dry.stderr
    assert "would remove 1 chunk(s)" in dry.stdout
    assert {s.id for s in store.chunk_stats()} == before

    young = run("gc", "--backup-root", str(share))
    assert young.returncode == 0 and "removed 0 chunk(s)" in young.stdout

    real = run("gc", "--grace", "0", "--backup-root", str(share))
    assert real.returncode == 0, real.stderr
    assert "removed 1 chunk(s)" in real.stdout
    assert {s.id for s in store.chunk_stats()} == store.referenced_chunks()
    assert run("verify", "--backup-root", str(share)).returncode == 0
    assert not (share / "testboxctl.lock").exists()


def test_import_legacy(share: Path, tmp_path: Path) -> None:
    data = random.Random(2).randbytes(3 * CS) + bytes(5 * CS) + b"tail"
    box = share / LEGACY_IP
    box.mkdir()
    (box / "sda.gz").write_bytes(gzip.compress(data))
    result = run("import-legacy", LEGACY_IP, "--backup-root", str(share))
    assert result.returncode == 0, result.stderr
    listed = json.loads(run("images", "--json", "--backup-root", str(share)).stdout)["images"]
    assert [(i["kind"], i["disks"][0]["size"]) for i in listed] == [("chunked", len(data))]
    assert listed[0]["id"] in result.stdout
    assert (box / "sda.gz.imported").exists() and not (box / "sda.gz").exists()
    target = tmp_path / "t.img"
    target.write_bytes(bytes(len(data)))
    restore_image(open_store(share), LEGACY_IP, "latest", {"sda": target})
    assert target.read_bytes() == data

    again = run("import-legacy", LEGACY_IP, "--backup-root", str(share))
    assert again.returncode == 1 and "has no legacy image" in again.stderr


def test_bad_box_argument(share: Path) -> None:
    result = run("import-legacy", "../etc", "--backup-root", str(share))
    assert result.returncode == 1 and "not a box IP address" in result.stderr
