"""One-box overrides (`testboxctl pxe-conf`): which box the planner plans for each address.

`pxe-conf IP rescue` must not be undone by the next `reconcile` (a timer may run every few
minutes, long before the box reboots), and it must go through the same planner and apply as
everything else. So the override is recorded where only the controller writes and every
reconcile already looks: the managed PXE config it arms carries a `# override: <box JSON>` line
(schema.layout.OVERRIDE_COMMENT). Boxes never write the TFTP share, so a box cannot forge one.

While the overriding request is not finished (decide() says armed), the planner plans the
override's box for that address instead of the desired one; once it is done (or stalled), the
desired box rules again in the same run. `pxe-conf IP none` ends an override at once.
Pure: everything comes from the arguments.

Trust: the TFTP share is not the controller's alone (the on-box service removes its own config,
so every box can write there; contract §9). A forged override line can therefore only
ever be one that does not harm a disk: a recorded `restore` override is never honoured (a box
could otherwise have the controller restore another box over its data). `pxe-conf IP restore`
still arms the restore at once; the next reconcile treats it like any other config and converges
the box back to the desired file. The override is always for the address its config is named
after, and is validated like a desired box.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from controller.core.requeststate import decide
from schema.desired import DesiredState, EffectiveBox
from schema.layout import OVERRIDE_COMMENT, hex_ip
from schema.observed import Observed
from schema.request import request_id

# Actions a recorded override may keep armed across reconciles: none of them writes a disk.
RECORDED_ACTIONS = frozenset({"backup", "backup-again", "refresh-info", "rescue"})


@dataclass(frozen=True, slots=True)
class PlannedBox:
    box: EffectiveBox
    # True when `box` is an override: its config carries the override line.
    override: bool


def override_line(box: EffectiveBox) -> str:
    """The comment line recording `box` as an override (canonical: sorted keys, no spaces)."""
    document = json.dumps(box.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return OVERRIDE_COMMENT + document


def recorded_override(content: str, ip: str) -> EffectiveBox | None:
    """The override a managed config records for `ip`, or None (none, or not a valid one)."""
    for line in content.splitlines():
        if not line.startswith("#"):
            break
        if line.startswith(OVERRIDE_COMMENT):
            try:
                box = EffectiveBox.model_validate_json(line[len(OVERRIDE_COMMENT) :])
            except ValidationError:
                return None
            # An override for another address, one that arms nothing, or one that would write a
            # disk (see the module docstring) is not honoured.
            ok = box.ip == ip and box.action in RECORDED_ACTIONS and box.request is not None
            return box if ok else None
    return None


def _still_armed(box: EffectiveBox, observed: Observed) -> bool:
    rid = request_id(box)
    seen = observed.boxes.get(box.ip)
    result = seen.results.get(rid) if seen is not None and rid is not None else None
    return decide(box, rid, result).armed


def _observed_override(ip: str, observed: Observed) -> EffectiveBox | None:
    cfg = observed.configs.get(hex_ip(ip))
    if cfg is None or not cfg.managed:
        return None
    box = recorded_override(cfg.content, ip)
    return box if box is not None and _still_armed(box, observed) else None


def planned_boxes(
    desired: DesiredState,
    observed: Observed,
    overrides: Mapping[str, EffectiveBox] | None = None,
) -> list[PlannedBox]:
    """The boxes to plan, by address: a new override (`overrides`), else an unfinished recorded
    override, else the desired box; then overrides for addresses the desired state lacks."""
    new = dict(overrides or {})
    out: list[PlannedBox] = []
    seen: set[str] = set()
    for box in desired.effective_boxes():
        seen.add(box.ip)
        if box.ip in new:
            chosen = new[box.ip]
            out.append(PlannedBox(chosen, chosen.action in RECORDED_ACTIONS))
            continue
        recorded = _observed_override(box.ip, observed)
        out.append(PlannedBox(recorded, True) if recorded else PlannedBox(box, False))
    for ip, chosen in sorted(new.items()):
        if ip not in seen:
            seen.add(ip)
            out.append(PlannedBox(chosen, chosen.action in RECORDED_ACTIONS))
    for name, cfg in sorted(observed.configs.items()):
        if not cfg.managed:
            continue
        recorded = _observed_override_by_name(name, observed)
        if recorded is not None and recorded.ip not in seen:
            seen.add(recorded.ip)
            out.append(PlannedBox(recorded, True))
    return out


def _observed_override_by_name(name: str, observed: Observed) -> EffectiveBox | None:
    cfg = observed.configs[name]
    for line in cfg.content.splitlines():
        if line.startswith(OVERRIDE_COMMENT):
            try:
                ip = json.loads(line[len(OVERRIDE_COMMENT) :]).get("ip")
            except (ValueError, AttributeError):
                return None
            if not isinstance(ip, str):
                return None
            try:
                ours = hex_ip(ip) == name
            except ValueError:
                return None
            return _observed_override(ip, observed) if ours else None
    return None
