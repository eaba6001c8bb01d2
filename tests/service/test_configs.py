"""Which PXE configs a successful run removes: the box's own, only while they name its request."""

from pathlib import Path

from onbox.service.outcome import configs_to_remove
from onbox.shareio import Share
from schema.layout import MANAGED_MARKER, REQUEST_COMMENT
from tests.service.lab import BoxLab, make_disk

MAC_CFG = "01-52-54-00-12-34-56"


def managed(request_id: str) -> str:
    return f"{MANAGED_MARKER}\n{REQUEST_COMMENT}{request_id}\nPATH bios\n"


def test_success_removes_hex_and_mac_configs_of_the_request(lab: BoxLab) -> None:
    request = lab.request("refresh-info")
    append = lab.arm(request)
    cfg_dir = lab.config.parent
    (cfg_dir / MAC_CFG).write_text(managed(request.request_id))
    (cfg_dir / "01-52-54-00-99-99-99").write_text(managed("0123456789ab"))  # another box's
    run = lab.run(append, disks={"sda": make_disk(lab.root / "sda.img", 4096)})
    assert run.code == 0, run.stderr
    assert sorted(p.name for p in cfg_dir.iterdir()) == ["01-52-54-00-99-99-99", "default"]
    assert f"removed pxelinux.cfg/0A00020F, pxelinux.cfg/{MAC_CFG}" in lab.box_log()


def test_a_config_re_armed_meanwhile_is_left(tmp_path: Path) -> None:
    cfg_dir = tmp_path / "pxelinux.cfg"
    cfg_dir.mkdir()
    (cfg_dir / "0A00020F").write_text(managed("bbbbbbbbbbbb"))
    remove, notes = configs_to_remove(Share(tmp_path), "10.0.2.15", "aaaaaaaaaaaa")
    assert remove == []
    assert "now names request bbbbbbbbbbbb" in notes[0]


def test_an_unmanaged_seed_config_is_removed_like_the_seed_did(tmp_path: Path) -> None:
    cfg_dir = tmp_path / "pxelinux.cfg"
    cfg_dir.mkdir()
    (cfg_dir / "0A00020F").write_text("PATH bios\nDEFAULT maintenance\n")
    remove, notes = configs_to_remove(Share(tmp_path), "10.0.2.15", "aaaaaaaaaaaa")
    assert remove == ["pxelinux.cfg/0A00020F"] and notes == []
