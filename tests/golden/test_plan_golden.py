"""Golden plan output (human and JSON) for a small fixed lab with every kind of change.

The lab: a box to arm, a hand-edited (drifted) config, a done request with images to prune,
a box whose request changed (request.json deepdiff + config diff), a MAC-named config, a config
of a box removed from the desired state, an orphaned box directory and a foreign config.
Regenerate after an intended change with `UPDATE_GOLDEN=1 pytest tests/golden` and review the
diff like any other code change.
"""

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.core.plan import make_plan
from controller.core.render_plan import plan_json, render_plan_text
from controller.io.apply import apply_plan
from controller.io.observe import observe
from schema.plan import Plan
from tests.lab_builder import (
    T0,
    add_image,
    desired,
    make_shares,
    managed_config,
    write_config,
    write_result,
)

HERE = Path(__file__).parent

BOXES: list[dict[str, Any]] = [
    {"name": "tb-new", "ip": "10.0.2.15", "action": "backup"},
    {"name": "tb-drift", "ip": "10.0.2.16", "action": "backup-again", "disks": ["sda", "sdb"]},
    {"name": "tb-done", "ip": "10.0.2.17", "action": "backup"},
    {"name": "tb-req", "ip": "10.0.2.18", "action": "restore", "request": "T-42"},
    {"name": "tb-mac", "ip": "10.0.2.19", "mac": "52:54:00:12:34:56"},
]


def golden_plan(tmp_path: Path) -> Plan:
    shares = make_shares(tmp_path)
    before = desired(
        *BOXES[1:3],
        {"name": "tb-req", "ip": "10.0.2.18", "action": "restore"},
        {"name": "tb-gone", "ip": "10.0.2.20", "action": "refresh-info"},
    )
    apply_plan(make_plan(before, observe(shares, now=T0)), shares)
    # What happened since: a hand edit, a success, images, a MAC config, foreign files.
    name, text = managed_config(before, "tb-drift")
    write_config(shares, name, text.replace("  MENU LABEL Maintenance (NFS)\n", ""))
    done = json.loads((shares.backup / "10.0.2.17" / "request.json").read_text())["request_id"]
    write_result(shares, "10.0.2.17", done, "success")
    for n in range(3):
        add_image(shares, "10.0.2.17", T0 - timedelta(days=n), f"00000{n}")
    write_config(shares, "01-52-54-00-12-34-56", managed_config(desired(*BOXES), "tb-new")[1])
    write_config(shares, "0A0002C8", "DEFAULT lab-test\nLABEL lab-test\n  LOCALBOOT 0\n")
    (shares.backup / "10.0.2.99").mkdir()

    plan = make_plan(desired(*BOXES), observe(shares, now=T0))
    # The temp directory and the fingerprint (which covers it) differ per run: pin them.
    return plan.model_copy(
        update={"tftp_root": "/lab/tftp", "backup_root": "/lab/backup", "fingerprint": "0" * 64}
    )


@pytest.mark.parametrize(
    ("name", "render"), [("plan.txt", render_plan_text), ("plan.json", plan_json)]
)
def test_golden(tmp_path: Path, name: str, render: object) -> None:
    assert callable(render)
    text = render(golden_plan(tmp_path))
    path = HERE / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()
