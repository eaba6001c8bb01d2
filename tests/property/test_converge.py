"""Hypothesis: from any shares, one apply converges, and applying again changes nothing.

Random valid desired states (actions, disks, MACs, request tokens, attempt limits, retention)
meet random shares on temp dirs (managed configs for other requests, hand-edited configs,
foreign configs, MAC-named configs, stale request files, results of every outcome and attempt
count, images of various ages, box directories nobody declares). For each:
- plan, apply → observe again → the plan is empty;
- applying the same plan a second time changes no byte on either share;
- foreign configs keep their bytes; images of undeclared boxes are all still there; each box's
  newest image survives.
"""

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from controller.core.plan import make_plan
from controller.core.render import render_box_config
from controller.io.apply import apply_plan
from controller.io.observe import observe
from controller.io.shares import Shares
from schema.desired import DesiredState
from schema.layout import GLOBAL_LOG, PXE_CFG_DIR, hex_ip, mac_config_name
from schema.request import Request, request_id
from schema.types import ACTIONS
from tests.lab_builder import T0, add_image, desired, make_shares, snapshot, write_result

IPS = [f"10.0.2.{n}" for n in range(10, 18)]
MACS = [f"52:54:00:00:00:{n:02x}" for n in range(8)]


@st.composite
def desired_states(draw: st.DrawFn) -> DesiredState:
    ips = draw(st.lists(st.sampled_from(IPS), unique=True, max_size=5))
    macs = draw(st.lists(st.sampled_from(MACS), unique=True, min_size=len(ips), max_size=len(ips)))
    boxes: list[dict[str, Any]] = []
    for i, ip in enumerate(ips):
        action = draw(st.sampled_from(ACTIONS))
        box: dict[str, Any] = {"name": f"tb-{i}", "ip": ip, "action": action}
        if draw(st.booleans()):
            box["mac"] = macs[i]
        if draw(st.booleans()):
            box["disks"] = draw(
                st.lists(st.sampled_from(["sda", "sdb", "nvme0n1"]), unique=True, min_size=1)
            )
        if draw(st.booleans()):
            box["request"] = draw(st.sampled_from(["2026-11-25", "T-17"]))
        if draw(st.booleans()):
            box["max_attempts"] = draw(st.integers(1, 3))
        if draw(st.booleans()):
            box["retention"] = draw(
                st.sampled_from(
                    [{"keep_last": 1}, {"keep_daily": 2}, {"keep_last": 1, "keep_weekly": 1}]
                )
            )
        if action == "restore" and draw(st.booleans()):
            box["image"] = "latest"
        boxes.append(box)
    return desired(*boxes)


def _other_request(state: DesiredState, ip: str, action: str) -> tuple[str, str]:
    """(request id, rendered config) of some other request for the box at `ip`."""
    box = desired({"name": "tb-old", "ip": ip, "action": action, "request": "old"}).boxes[0]
    eff = state.effective(box)
    rid = request_id(eff)
    assert rid is not None
    return rid, render_box_config(state.site, eff, rid)


def populate(data: st.DataObject, state: DesiredState, shares: Shares) -> None:
    """Random pre-existing content on both shares."""
    cfg_dir = shares.tftp / PXE_CFG_DIR
    by_ip = {b.ip: state.effective(b) for b in state.boxes}
    for ip in IPS:
        box = by_ip.get(ip)
        config = data.draw(
            st.sampled_from(["none", "managed-other", "managed-current", "drifted", "foreign"])
        )
        armable = [a for a in ACTIONS if a != "none"]
        if config == "managed-other" or (config in ("managed-current", "drifted") and box is None):
            _, text = _other_request(state, ip, data.draw(st.sampled_from(armable)))
            (cfg_dir / hex_ip(ip)).write_text(text)
        elif config in ("managed-current", "drifted") and box is not None:
            rid = request_id(box)
            if rid is not None:
                text = render_box_config(state.site, box, rid)
                if config == "drifted":
                    text += "MENU HIDDEN\n"
                (cfg_dir / hex_ip(ip)).write_text(text)
        elif config == "foreign":
            (cfg_dir / hex_ip(ip)).write_text(f"DEFAULT hand-made-{ip}\n")
        if data.draw(st.booleans()):
            # A MAC-named config: managed (for another request) or foreign.
            mac = data.draw(st.sampled_from(MACS))
            text = (
                _other_request(state, ip, "backup")[1]
                if data.draw(st.booleans())
                else "DEFAULT x\n"
            )
            (cfg_dir / mac_config_name(mac)).write_text(text)

        if not data.draw(st.booleans()):
            continue  # no box directory
        box_dir = shares.backup / ip
        box_dir.mkdir(exist_ok=True)
        if box is not None and data.draw(st.booleans()):
            (box_dir / box.name).write_text("")
        if data.draw(st.booleans()):
            (box_dir / "request.json").write_text('{"old": true}\n')
        if box is not None and box.action != "none" and data.draw(st.booleans()):
            (box_dir / "request.json").write_text(
                Request.for_box(box).model_dump_json(indent=2) + "\n"
            )
        rid = request_id(box) if box is not None else None
        if rid is not None and box is not None:
            outcome = data.draw(st.sampled_from(["none", "success", "failure", "rescue-ready"]))
            if outcome == "rescue-ready" and box.action != "rescue":
                outcome = "failure"
            if outcome != "none":
                write_result(shares, ip, rid, outcome, data.draw(st.integers(1, 4)), box.action)
        for n in range(data.draw(st.integers(0, 4))):
            add_image(
                shares, ip, T0 - timedelta(days=data.draw(st.integers(0, 20)), hours=n), f"{n:06x}"
            )


def newest_images(shares: Shares) -> dict[str, str]:
    observed = observe(shares)
    return {ip: b.images[-1].id for ip, b in observed.boxes.items() if b.images}


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(state=desired_states(), data=st.data())
def test_apply_converges_and_is_idempotent(state: DesiredState, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        shares = make_shares(Path(tmp))
        populate(data, state, shares)
        observed = observe(shares)
        foreign = {n: c.content for n, c in observed.configs.items() if not c.managed}
        undeclared = {
            ip: [i.id for i in b.images]
            for ip, b in observed.boxes.items()
            if ip not in {x.ip for x in state.boxes}
        }
        newest = newest_images(shares)

        plan = make_plan(state, observed, allow_empty=True)
        for kind in sorted({op.kind for op in plan.operations} | {n.kind for n in plan.notices}):
            event(kind)
        apply_plan(plan, shares)

        again = make_plan(state, observe(shares), allow_empty=True)
        assert again.operations == [], [op.model_dump() for op in again.operations]

        before = snapshot(shares.tftp, shares.backup)
        report = apply_plan(plan, shares)
        assert report.applied == []
        assert snapshot(shares.tftp, shares.backup) == before

        after = observe(shares)
        for name, content in foreign.items():
            assert (shares.tftp / PXE_CFG_DIR / name).read_text() == content
        for ip, ids in undeclared.items():
            assert [i.id for i in after.boxes[ip].images] == ids
        for ip, image_id in newest.items():
            assert image_id in {i.id for i in after.boxes[ip].images}
        log = shares.backup / GLOBAL_LOG
        lines = log.read_text().splitlines() if log.exists() else []
        assert len(lines) == len(plan.operations)
