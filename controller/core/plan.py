"""The planner: desired state + observed shares → the changes that converge them (contract §3).

`make_plan` is a PURE function: no file, no clock, no network. Everything it needs is in its
arguments (the observation carries its own timestamp, used as "now" for retention), so the same
inputs always give the same plan, the planner table tests need no shares, and a saved plan can
be reviewed before anything runs.

Operations come out in the order `apply` must run them: configs that go away first (a box is
disarmed before anything else changes), then per box the directory, hostname file,
`request.json` and `disk-devices.lst` before the PXE config that points at them, then image
pruning.
"""

from collections.abc import Mapping
from datetime import datetime

from controller.core.override import planned_boxes
from controller.core.plan_box import BoxPlan, plan_box
from controller.errors import ControllerError
from schema.desired import DesiredState, EffectiveBox
from schema.layout import PXE_CFG_DIR
from schema.observed import Observed
from schema.plan import Notice, Operation, Plan


def ip_of_config_name(name: str) -> str | None:
    """The IPv4 address a hex-IP config name stands for (0A00020F -> 10.0.2.15), else None."""
    if len(name) != 8 or any(c not in "0123456789ABCDEF" for c in name):
        return None
    value = int(name, 16)
    return ".".join(str((value >> shift) & 255) for shift in (24, 16, 8, 0))


# Power cycles last: a box may only reboot once everything it will read is in place.
_PHASE = {"remove-config": 0, "prune-image": 2, "power-cycle": 3}


def make_plan(
    desired: DesiredState,
    observed: Observed,
    *,
    allow_empty: bool = False,
    now: datetime | None = None,
    revision: str | None = None,
    overrides: Mapping[str, EffectiveBox] | None = None,
) -> Plan:
    """Compute the plan. Pure: same inputs, same plan; nothing is read or written.

    `revision` is the desired state's revision (contract §8): recorded in the plan and in each
    request.json the plan writes, never a reason to write one.

    `overrides` (by IP): one-box overrides to arm now (`pxe-conf`); recorded overrides on the
    TFTP share are honoured without it (controller.core.override).

    Raises ControllerError when the desired state has no boxes while managed configs exist
    (an emptied or mis-pointed desired file must not disarm the whole lab) unless `allow_empty`.
    """
    planned = planned_boxes(desired, observed, overrides)
    boxes = [p.box for p in planned]
    managed = sorted(name for name, cfg in observed.configs.items() if cfg.managed)
    if not boxes and managed and not allow_empty:
        raise ControllerError(
            f"the desired state has no boxes but {len(managed)} managed PXE config(s) exist "
            f"({', '.join(managed[:5])}{', ...' if len(managed) > 5 else ''}); "
            "refusing to remove them all (pass --allow-empty if that is what you want)"
        )
    when = now or observed.observed_at

    operations: list[Operation] = []
    notices: list[Notice] = []
    claimed: set[str] = set()
    for entry in planned:
        part: BoxPlan = plan_box(
            desired.site, entry.box, observed, when, revision, override=entry.override
        )
        operations.extend(part.operations)
        notices.extend(part.notices)
        claimed.update(part.config_names)

    desired_ips = {box.ip for box in boxes}
    for name in sorted(observed.configs):
        if name in claimed:
            continue
        cfg = observed.configs[name]
        path = f"{PXE_CFG_DIR}/{name}"
        if cfg.managed:
            operations.append(
                Operation(
                    kind="remove-config",
                    share="tftp",
                    path=path,
                    reason="no box in the desired state uses this config (box removed)",
                    ip=ip_of_config_name(name),
                    request_id=cfg.request_id,
                    old_content=cfg.content,
                )
            )
        elif cfg.problem is not None:
            notices.append(
                Notice(
                    kind="problem",
                    path=path,
                    ip=ip_of_config_name(name),
                    message=f"{path}: {cfg.problem}; never read or changed by testboxctl",
                )
            )
        else:
            notices.append(
                Notice(
                    kind="foreign-config",
                    path=path,
                    message="not managed by testboxctl (no managed-by marker): left untouched",
                )
            )
    for ip in sorted(observed.boxes):
        if ip not in desired_ips:
            images = len(observed.boxes[ip].images)
            notices.append(
                Notice(
                    kind="orphaned-box",
                    ip=ip,
                    path=ip,
                    message=(
                        f"box directory not in the desired state ({images} image(s)); "
                        "kept, images are never deleted for that"
                    ),
                )
            )

    notices.extend(Notice(kind="problem", message=problem) for problem in observed.problems)
    # Stable sort: phase first, the planner's per-box order within a phase.
    operations.sort(key=lambda op: _PHASE.get(op.kind, 1))
    return Plan(
        tftp_root=observed.tftp_root,
        backup_root=observed.backup_root,
        observed_at=observed.observed_at,
        fingerprint=observed.fingerprint,
        operations=operations,
        notices=notices,
        revision=revision,
    )
