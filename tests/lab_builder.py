"""Builds real shares on disk for the controller's tests: markers, configs, results, images.

Everything is written the way the real writers write it (the image store's commit records, the
service's result JSON, managed configs rendered by controller.core.render), so observe sees exactly
what it would see in a lab.
"""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from controller.core.render import render_box_config
from controller.io.shares import Shares
from onbox.store import open_store
from onbox.store.records import CommitRecord
from schema.desired import DesiredState
from schema.layout import (
    BACKUP_MARKER,
    DEFAULT_CONFIG,
    DEFAULT_CONFIG_TEXT,
    PXE_CFG_DIR,
    RESULTS_DIR,
    hex_ip,
)
from schema.request import request_id
from tests.sample_site import site

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

SITE: dict[str, Any] = site(  # tests/sample_site.py, with a static network
    network={"mode": "static", "gateway": "10.0.2.2", "netmask": "255.255.255.0", "device": "eth0"},
    defaults={"disks": ["sda"], "retention": {"keep_last": 2}, "max_attempts": 3},
)


def desired(*boxes: dict[str, Any], site: dict[str, Any] | None = None) -> DesiredState:
    return DesiredState.model_validate({"site": site or SITE, "boxes": list(boxes)})


def make_shares(root: Path) -> Shares:
    """Empty, mounted-looking shares under `root`."""
    tftp, backup = root / "tftp", root / "backup"
    (tftp / PXE_CFG_DIR).mkdir(parents=True)
    (tftp / PXE_CFG_DIR / DEFAULT_CONFIG).write_text(DEFAULT_CONFIG_TEXT)
    backup.mkdir(parents=True, exist_ok=True)  # may be a mount point (tests/hostile)
    (backup / BACKUP_MARKER).write_text("")
    return Shares(tftp=tftp, backup=backup)


def write_desired_file(path: Path, state: DesiredState, shares: Shares) -> Path:
    """A desired YAML (JSON is YAML) pointing at `shares`."""
    data = state.model_dump(mode="json", exclude_none=True)
    data["site"]["tftp_root"] = str(shares.tftp)
    data["site"]["backup_root"] = str(shares.backup)
    path.write_text(json.dumps(data, indent=1))
    return path


def managed_config(state: DesiredState, name: str) -> tuple[str, str]:
    """(file name, content) of the config testboxctl renders for box `name`."""
    box = next(b for b in state.effective_boxes() if b.name == name)
    rid = request_id(box)
    assert rid is not None
    return hex_ip(box.ip), render_box_config(state.site, box, rid)


def write_config(shares: Shares, name: str, content: str) -> Path:
    path = shares.tftp / PXE_CFG_DIR / name
    path.write_text(content)
    return path


def write_result(
    shares: Shares,
    ip: str,
    rid: str,
    outcome: str,
    attempt: int = 1,
    action: str = "backup",
) -> Path:
    """A result file as the on-box service writes it (schema.request.Result)."""
    results = shares.backup / ip / RESULTS_DIR
    results.mkdir(parents=True, exist_ok=True)
    finished = T0 + timedelta(minutes=attempt)
    doc = {
        "schema_version": 1,
        "request_id": rid,
        "action": action,
        "ip": ip,
        "hostname": "tb",
        "outcome": outcome,
        "attempt": attempt,
        "started": (finished - timedelta(minutes=1)).isoformat(),
        "finished": finished.isoformat(),
        "disks": [],
        "image_id": None,
        "error": None if outcome != "failure" else "disk read error",
        "service_version": "test",
        "history": [],
    }
    path = results / f"{rid}.json"
    path.write_text(json.dumps(doc, indent=1))
    return path


def add_image(shares: Shares, ip: str, created: datetime, suffix: str = "abcdef") -> str:
    """A committed (empty) image through the image store's own commit path."""
    image_id = f"{created.astimezone(UTC):%Y%m%dT%H%M%SZ}-{suffix}"
    (shares.backup / ip).mkdir(parents=True, exist_ok=True)
    open_store(shares.backup).commit(
        CommitRecord(id=image_id, box_ip=ip, created=created, disks=[])
    )
    return image_id


def snapshot(*roots: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every path under the roots with its mode and content (None for directories)."""
    state: dict[str, tuple[int, bytes | None]] = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            st = path.lstat()
            key = f"{root.name}/{path.relative_to(root)}"
            state[key] = (st.st_mode, path.read_bytes() if path.is_file() else None)
    return state
