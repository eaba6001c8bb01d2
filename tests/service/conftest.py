from pathlib import Path

import pytest

from tests.service.lab import BoxLab


@pytest.fixture
def lab(tmp_path: Path) -> BoxLab:
    return BoxLab(tmp_path).make_shares()
