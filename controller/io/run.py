"""The run sequence, once: markers → lock → observe → plan → apply (contract §5).

`reconcile`, `apply PLAN` and `pxe-conf` (and later a timer) all converge the shares the same
way, so the order that keeps them safe lives here and nowhere else: the markers are checked
before anything (an unmounted share changes nothing, not even a lock file), the observation that
the plan is made from is taken under the lock, and a saved plan is applied only if the shares
still have the fingerprint it was made against. The CLI calls these functions and only prints;
tests call them directly.

Power cycles (contract §7) need credentials: they are looked up before the lock is taken (a missing
name is a validation-time error, nothing changed), then handed to apply, which cycles last.

`on_plan` is called with the plan under the lock, before anything is applied (the CLI shows it
and saves `--out` there, so what is shown is exactly what runs).
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from controller.core.plan import make_plan
from controller.core.savedplan import check_saved_plan
from controller.core.sweep import dead_temp_files
from controller.errors import PlanRefused, StalePlan
from controller.io.apply import ApplyReport, apply_plan, sweep_temp_files
from controller.io.lock import DEFAULT_LOCK_TIMEOUT, share_lock
from controller.io.observe import check_markers, observe
from controller.io.power.credentials import (
    CredentialSource,
    desired_credential_names,
    require_credentials,
)
from controller.io.power.run import needed_credentials
from controller.io.shares import Shares
from schema.desired import DesiredState
from schema.observed import Observed
from schema.plan import Plan

Warn = Callable[[str], None]
PlanHook = Callable[[Plan], None]
# Checks a saved plan's operations against a fresh observation before it is applied (raises a
# ControllerError to refuse). The hostile-share work plugs its re-derivation check in here.
SavedPlanCheck = Callable[[Plan, Observed], None]


def _quiet(_text: str) -> None:
    return None


def _nothing(_plan: Plan) -> None:
    return None


@dataclass(frozen=True)
class RunOutcome:
    plan: Plan
    report: ApplyReport


def dry_run(
    desired: DesiredState,
    shares: Shares,
    *,
    allow_empty: bool = False,
    revision: str | None = None,
) -> Plan:
    """The plan a reconcile would apply now. Reads only; takes no lock."""
    check_markers(shares)
    return make_plan(desired, observe(shares), allow_empty=allow_empty, revision=revision)


def converge(
    shares: Shares,
    make: Callable[[Observed], Plan],
    *,
    holder: str,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    warn: Warn = _quiet,
    on_plan: PlanHook = _nothing,
    credentials: CredentialSource | None = None,
    desired: DesiredState | None = None,
) -> RunOutcome:
    """Markers, lock, observe, `make` the plan from the observation, `on_plan`, apply.

    With `desired`, the dead temp files of killed earlier runs (controller.core.sweep) are
    removed first, under the lock (a failure to remove one is a warning).
    """
    check_markers(shares)  # before the lock: never write a lock file into an empty mount point
    with share_lock(shares.backup, holder, timeout=lock_timeout, warn=warn):
        observed = observe(shares)
        plan = make(observed)
        on_plan(plan)
        if desired is not None:
            dead = dead_temp_files(desired, observed, observed.observed_at)
            if dead:
                _, problems = sweep_temp_files(shares, dead)
                for problem in problems:
                    warn(problem)
        return RunOutcome(plan, apply_plan(plan, shares, credentials=credentials))


def reconcile(
    desired: DesiredState,
    shares: Shares,
    *,
    allow_empty: bool = False,
    revision: str | None = None,
    holder: str = "testboxctl reconcile",
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    warn: Warn = _quiet,
    on_plan: PlanHook = _nothing,
    credentials: CredentialSource | None = None,
) -> RunOutcome:
    """Converge the shares to `desired`: the whole of `testboxctl reconcile`."""
    source = credentials or CredentialSource()
    require_credentials(source, desired_credential_names(desired.effective_boxes()))
    return converge(
        shares,
        lambda observed: make_plan(desired, observed, allow_empty=allow_empty, revision=revision),
        holder=holder,
        lock_timeout=lock_timeout,
        warn=warn,
        on_plan=on_plan,
        credentials=source,
        desired=desired,
    )


def rederive_check(desired: DesiredState, shares: Shares, source: str) -> SavedPlanCheck:
    """The check of `apply PLAN`: the saved operations must be exactly what the planner derives
    now from `desired` and the fresh observation (controller.core.savedplan), else PlanRefused."""

    def check(plan: Plan, observed: Observed) -> None:
        # allow_empty: an honest plan that disarms everything was made with --allow-empty; if
        # the desired state is still empty, the fresh plan removes the same configs.
        fresh = make_plan(desired, observed, allow_empty=True, revision=plan.revision)
        problems = check_saved_plan(
            plan, fresh, tftp_root=str(shares.tftp), backup_root=str(shares.backup)
        )
        if problems:
            raise PlanRefused(
                [f"{source}: refused, nothing applied: {problem}" for problem in problems]
            )

    return check


def apply_saved(
    plan: Plan,
    *,
    source: str,
    holder: str | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    warn: Warn = _quiet,
    on_plan: PlanHook = _nothing,
    check: SavedPlanCheck | None = None,
    credentials: CredentialSource | None = None,
    desired: DesiredState | None = None,
) -> RunOutcome:
    """Apply a saved plan (`testboxctl apply PLAN`) if the shares did not change since it was
    made; `check` may refuse its operations first. `source` names the plan in messages."""

    def same_shares(observed: Observed) -> Plan:
        if observed.fingerprint != plan.fingerprint:
            raise StalePlan(
                f"{source}: the shares changed since this plan was made "
                f"(at {plan.observed_at:%Y-%m-%dT%H:%M:%SZ}); nothing applied. "
                "Make a new plan with `testboxctl reconcile --dry-run --out PLAN`"
            )
        if check is not None:
            check(plan, observed)
        return plan

    shares = Shares(tftp=Path(plan.tftp_root), backup=Path(plan.backup_root))
    secrets = credentials or CredentialSource()
    require_credentials(secrets, needed_credentials(plan.operations))
    return converge(
        shares,
        same_shares,
        holder=holder or f"testboxctl apply {source}",
        lock_timeout=lock_timeout,
        warn=warn,
        on_plan=on_plan,
        credentials=secrets,
        desired=desired,
    )
