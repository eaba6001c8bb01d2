"""Where the shares are: flag, then environment, then the desired file (contract §5)."""

from pathlib import Path

import pytest

from controller.desired.load import LoadedDesired, load_desired
from controller.errors import ControllerError
from controller.io.shares import resolve_shares
from tests.sample_site import site_yaml

SITE = site_yaml(tftp_root="tftp", backup_root="../backup")


@pytest.fixture
def loaded(tmp_path: Path) -> LoadedDesired:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "site.yaml").write_text(SITE)
    return load_desired(tmp_path / "conf" / "site.yaml")


def test_file_paths_relative_to_the_file(
    loaded: LoadedDesired, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TESTBOX_TFTP_ROOT", raising=False)
    monkeypatch.delenv("TESTBOX_BACKUP_ROOT", raising=False)
    shares = resolve_shares(loaded)
    assert shares.tftp == tmp_path / "conf" / "tftp"
    assert shares.backup == tmp_path / "backup"


def test_environment_overrides_file_and_flag_overrides_environment(
    loaded: LoadedDesired, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TESTBOX_TFTP_ROOT", "/env/tftp")
    monkeypatch.setenv("TESTBOX_BACKUP_ROOT", "/env/backup")
    assert resolve_shares(loaded).tftp == Path("/env/tftp")
    monkeypatch.chdir(tmp_path)
    shares = resolve_shares(loaded, tftp_root="rel/tftp", backup_root="/flag/backup")
    assert shares.tftp == tmp_path / "rel" / "tftp"  # a typed relative path: relative to cwd
    assert shares.backup == Path("/flag/backup")


def test_without_a_desired_file_a_root_must_be_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TESTBOX_TFTP_ROOT", raising=False)
    monkeypatch.delenv("TESTBOX_BACKUP_ROOT", raising=False)
    with pytest.raises(ControllerError, match="--tftp-root"):
        resolve_shares(None)
    assert resolve_shares(None, "/t", "/b").backup == Path("/b")
