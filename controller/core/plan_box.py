"""The planner's per-box step (pure, like `controller.core.plan`): one desired box → its operations.

Kept apart from `make_plan` so each stays readable: this module knows what one box needs on the
shares (directory, hostname file, request files, its PXE config, image retention); `make_plan`
knows about the lab as a whole (removed boxes, foreign configs, ordering).
"""

from dataclasses import dataclass, field, replace
from datetime import datetime

from controller.core.boxfiles import (
    arm_record_text,
    disk_list_text,
    request_in_place,
    request_json_text,
)
from controller.core.override import override_line
from controller.core.power_plan import plan_power
from controller.core.render import render_box_config
from controller.core.requeststate import Decision, decide
from controller.core.retention import FUTURE_SKEW, future_images, select_prunable
from controller.core.schedule import armed_token, scheduled
from schema.desired import EffectiveBox, Retention, Site
from schema.layout import (
    ARM_RECORD,
    DISK_LIST,
    IMAGES_DIR,
    POWER_FILE,
    PXE_CFG_DIR,
    REQUEST_FILE,
    config_names,
    hex_ip,
)
from schema.observed import Observed, ObservedBox, ObservedResult
from schema.plan import Notice, NoticeKind, Operation, OperationKind, Share
from schema.power import PowerTarget
from schema.request import Request, request_id


@dataclass
class BoxPlan:
    operations: list[Operation] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    # Config names this box accounts for; make_plan treats every other one as unclaimed.
    config_names: list[str] = field(default_factory=list)


def retention_text(policy: Retention) -> str:
    rules = [f"{k}={v}" for k, v in policy.model_dump().items() if v is not None]
    return ", ".join(rules) or "keep everything"


def plan_box(
    site: Site,
    box: EffectiveBox,
    observed: Observed,
    now: datetime,
    revision: str | None = None,
    *,
    override: bool = False,
) -> BoxPlan:
    """Operations for one box, in the order apply runs them. Pure.

    `revision` (contract §8) is recorded in a request.json this plan writes; it never causes
    a write.
    `override`: `box` is a one-box override (controller.core.override); its config records it.
    """
    seen = observed.boxes.get(box.ip)
    config = observed.configs.get(hex_ip(box.ip))
    # The schedule turns action none into a scheduled backup when one is due (contract §3).
    armed = config.request_id if config is not None and config.managed else None
    when = scheduled(
        box,
        seen.images if seen is not None else [],
        seen.results if seen is not None else {},
        armed,
        now,
        armed_token=armed_token(seen.request_json if seen is not None else None, armed),
    )
    planner = _BoxPlanner(site, when.box, observed, now, revision, override=override)
    planner.why_scheduled = when.reason
    return planner.plan()


def box_problems(box: EffectiveBox, seen: ObservedBox | None) -> list[str]:
    """Damage that makes the planner disarm `box` and leave it alone (shared with status)."""
    if seen is None:
        return []
    problems = list(seen.problems)
    if box.name in seen.nonfiles:
        # The hostname file's place is taken by a link, FIFO or directory: never written.
        problems.append(f"{box.ip}/{box.name}: the hostname file is not a regular file")
    return problems


class _BoxPlanner:
    def __init__(
        self,
        site: Site,
        box: EffectiveBox,
        observed: Observed,
        now: datetime,
        revision: str | None = None,
        *,
        override: bool = False,
    ) -> None:
        self.revision = revision
        self.site = site
        self.box = box
        self.override = override_line(box) if override else None
        self.observed = observed
        self.now = now
        self.rid = request_id(box)
        self.seen: ObservedBox | None = observed.boxes.get(box.ip)
        self.out = BoxPlan(config_names=config_names(box.ip, box.mac))
        self.why_scheduled: str | None = None

    def op(
        self,
        kind: OperationKind,
        share: Share,
        path: str,
        reason: str,
        *,
        content: str | None = None,
        old_content: str | None = None,
        image_id: str | None = None,
        power: PowerTarget | None = None,
    ) -> None:
        # model_construct: every value here comes from validated models and typed literals, and
        # a 10,000-box lab makes tens of thousands of operations.
        self.out.operations.append(
            Operation.model_construct(
                kind=kind,
                share=share,
                path=path,
                reason=reason,
                box=self.box.name,
                ip=self.box.ip,
                request_id=self.rid,
                content=content,
                old_content=old_content,
                image_id=image_id,
                power=power,
            )
        )

    def notice(self, kind: NoticeKind, message: str, path: str | None = None) -> None:
        self.out.notices.append(
            Notice(kind=kind, message=message, box=self.box.name, ip=self.box.ip, path=path)
        )

    def _problems(self) -> list[str]:
        return box_problems(self.box, self.seen)

    def plan(self) -> BoxPlan:
        box, seen = self.box, self.seen
        problems = self._problems()
        if problems:
            # Damage on the share (a link, a FIFO, a record we cannot read): we cannot know what
            # the box did, so it is disarmed (its managed config goes: it boots its own disk) and
            # nothing is written into its directory until the operator fixes it.
            for problem in problems:
                self.notice(
                    "problem", f"{problem}; box disarmed and left alone until this is fixed", box.ip
                )
            for name in self.out.config_names:
                self._remove_managed(
                    name, "disarm: the box's files on the backup share are damaged"
                )
            return self.out
        if seen is None:
            self.op("create-box-dir", "backup", box.ip, "box has no directory on the backup share")
        if seen is None or box.name not in seen.files:
            self.op(
                "write-hostname",
                "backup",
                f"{box.ip}/{box.name}",
                "empty file to find the box by name",
                content="",
            )
        result = seen.results.get(self.rid) if seen is not None and self.rid else None
        primary, *others = self.out.config_names
        decision = decide(
            box,
            self.rid,
            result,
            arms=self._arms(),
            config_in_place=self._config_in_place(primary),
        )
        if self.why_scheduled is not None:
            decision = replace(decision, reason=f"{decision.reason}; {self.why_scheduled}")
        if decision.armed and self.rid is not None:
            if self._arm(self.rid, decision, primary):
                self._power(self.rid, decision, result)
        else:
            self._remove_managed(primary, f"disarm: {decision.reason}")
        # Only the hex-IP name is ever written; a managed config under the box's MAC name goes.
        for name in others:
            self._remove_managed(name, "boxes are armed under their hex-IP name only")
        if seen is not None and (seen.images or seen.image_problems):
            self._prune(decision, seen)
        return self.out

    def _arms(self) -> int:
        seen = self.seen
        if seen is None or self.rid is None or seen.arm_request != self.rid:
            return 0
        return seen.arms

    def _config_in_place(self, name: str) -> bool:
        current = self.observed.configs.get(name)
        return current is not None and current.managed and current.request_id == self.rid

    def _check_restore_source(self, seen: ObservedBox | None) -> None:
        """Arm anyway (a backup may land first), but tell the operator the restore would fail."""
        ref = self.box.image or "latest"
        ids = {image.id for image in seen.images} if seen is not None else set()
        if (ref == "latest" and not ids) or (ref != "latest" and ref not in ids):
            what = "no image yet" if ref == "latest" else f"no image {ref}"
            self.notice(
                "problem",
                f"restore armed but the box has {what}: the restore fails until it exists",
                f"{self.box.ip}/images",
            )

    def _power(self, rid: str, decision: Decision, result: ObservedResult | None) -> None:
        """A power-cycle operation (applied last) when the armed box should reboot now."""
        step = plan_power(
            self.box,
            rid,
            decision,
            result,
            power_json=self.seen.power_json if self.seen is not None else None,
            now=self.now,
        )
        if step.notice is not None:
            self.notice("power", step.notice, f"{self.box.ip}/{POWER_FILE}")
        if step.target is not None:
            self.op(
                "power-cycle",
                "backup",
                f"{self.box.ip}/{POWER_FILE}",
                step.reason,
                power=step.target,
            )

    def _arm(self, rid: str, decision: Decision, name: str) -> bool:
        """Arm the box; False when it cannot be (a foreign config is in the way)."""
        box, seen = self.box, self.seen
        current = self.observed.configs.get(name)
        path = f"{PXE_CFG_DIR}/{name}"
        if current is not None and not current.managed:
            self.notice(
                "blocked",
                f"a foreign config occupies {path}; {box.action} request {rid} is not armed "
                "(testboxctl never changes a foreign config: move it away to arm the box)",
                path,
            )
            return False
        if box.action == "restore":
            self._check_restore_source(seen)
        request = Request.for_box(box, self.revision)
        request_text = request_json_text(request)
        old_request = seen.request_json if seen is not None else None
        if not request_in_place(old_request, request):
            verb = "rewrite" if old_request is not None else "arm"
            self.op(
                "write-request",
                "backup",
                f"{box.ip}/{REQUEST_FILE}",
                f"{verb}: {decision.reason}",
                content=request_text,
                old_content=old_request,
            )
        disks_text = disk_list_text(box.disks)
        old_disks = seen.disk_list if seen is not None else None
        if old_disks != disks_text:
            self.op(
                "write-disk-list",
                "backup",
                f"{box.ip}/{DISK_LIST}",
                f"disks of the request: {' '.join(box.disks)}",
                content=disks_text,
                old_content=old_disks,
            )
        config_text = render_box_config(self.site, box, rid, override=self.override)
        if current is None or current.request_id != rid:
            # Every fresh arm is one maintenance boot: counted before the config goes in place,
            # so a box that can never record a result still stops after max_attempts boots.
            arms = self._arms() + 1
            self.op(
                "record-arm",
                "backup",
                f"{box.ip}/{ARM_RECORD}",
                f"arm {arms} of at most {box.max_attempts} for request {rid}",
                content=arm_record_text(rid, arms),
            )
        if current is None:
            self.op("write-config", "tftp", path, f"arm: {decision.reason}", content=config_text)
        elif current.content != config_text:
            if current.request_id != rid:
                why = f"request changed ({current.request_id} → {rid}): {decision.reason}"
            else:
                why = "drift: the config differs from what testboxctl renders"
            self.op(
                "write-config",
                "tftp",
                path,
                why,
                content=config_text,
                old_content=current.content,
            )
        return True

    def _remove_managed(self, name: str, reason: str) -> None:
        current = self.observed.configs.get(name)
        path = f"{PXE_CFG_DIR}/{name}"
        if current is None:
            return
        if current.managed:
            self.op("remove-config", "tftp", path, reason, old_content=current.content)
        else:
            self.notice("foreign-config", "not managed by testboxctl: left untouched", path)

    def _prune(self, decision: Decision, seen: ObservedBox) -> None:
        box = self.box
        if seen.image_problems:
            for problem in seen.image_problems:
                self.notice("problem", f"{problem}; retention not applied to this box", box.ip)
            return
        protected: set[str] = set()
        if decision.armed and box.action == "restore":
            # An armed restore's target is never pruned, whatever the retention says.
            ref = box.image or "latest"
            protected.add(seen.images[-1].id if ref == "latest" else ref)
        future = future_images(seen.images, self.now)
        if future:
            # A box with a wrong clock (or a forged record) could date an image ahead and make
            # retention prune the real newest backup: nothing is pruned while that is so.
            self.notice(
                "problem",
                f"image(s) {', '.join(future)} dated in the future (after "
                f"{self.now:%Y-%m-%dT%H:%M:%SZ} + {FUTURE_SKEW}): retention not applied "
                "until the box's clock and those records are fixed",
                f"{box.ip}/{IMAGES_DIR}",
            )
            return
        for image_id in select_prunable(seen.images, box.retention, protected):
            self.op(
                "prune-image",
                "backup",
                f"{box.ip}/images/{image_id}",
                f"retention ({retention_text(box.retention)})",
                image_id=image_id,
            )
