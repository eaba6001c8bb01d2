"""Is a saved plan what the planner would do now? Pure (issue 8: a plan file is an input).

`testboxctl apply PLAN` runs a file that anyone could have edited between review and apply: a
plan attached to a merge request must not be able to prune the only image, write an unmarked
PXE config with `init=/bin/sh` or overwrite a share marker. So apply does not trust the file's
operations: it re-derives the plan from the desired state and a fresh observation (under the
lock, after the fingerprint check) and applies the saved plan only if every operation, in
order, is exactly one the planner produces now, and the planner produces nothing the saved plan
lacks. Any difference refuses the whole plan; nothing is changed.

Equality is the whole operation (kind, share, path, content, old content, reason, box, image):
with the same desired state and the same shares (the fingerprint) the planner is
deterministic, so an honest saved plan always matches; a difference means the file was edited
or the desired state changed since the plan was made. Both deserve a new plan, not this one.
"""

from schema.plan import Operation, Plan

_SHOWN = 5  # differences listed one per line; the rest are counted


def _name(op: Operation) -> str:
    where = f"image {op.image_id} of {op.ip}" if op.kind == "prune-image" else op.path
    return f"{op.kind} {op.share}:{where}"


def check_plan_roots(saved: Plan, tftp_root: str | None, backup_root: str | None) -> list[str]:
    """One line per share of `saved` that is not the one the desired state names.

    Checked before anything is read: a plan's roots are data in the file too, and a plan
    pointing at another directory must not even have that directory observed.
    """
    problems: list[str] = []
    for what, planned, wanted in (
        ("TFTP", saved.tftp_root, tftp_root),
        ("backup", saved.backup_root, backup_root),
    ):
        if wanted is not None and planned != wanted:
            problems.append(
                f"the plan's {what} share {planned} is not the desired state's ({wanted})"
            )
    return problems


def check_saved_plan(
    saved: Plan, fresh: Plan, *, tftp_root: str | None = None, backup_root: str | None = None
) -> list[str]:
    """One line per way `saved` differs from `fresh` (the plan derived now); [] when it may run.

    `tftp_root`/`backup_root`, when given, are the shares the desired state names: a saved plan
    pointing at other directories is refused (its roots are data in the file too).
    """
    problems = check_plan_roots(saved, tftp_root, backup_root)
    fresh_ops = {op.model_dump_json() for op in fresh.operations}
    saved_ops = {op.model_dump_json() for op in saved.operations}
    foreign = [op for op in saved.operations if op.model_dump_json() not in fresh_ops]
    missing = [op for op in fresh.operations if op.model_dump_json() not in saved_ops]
    lines = [f"{_name(op)}: not an operation the planner derives now" for op in foreign]
    lines += [f"{_name(op)}: the planner derives it now, the plan lacks it" for op in missing]
    problems += lines[:_SHOWN]
    if len(lines) > _SHOWN:
        problems.append(f"... and {len(lines) - _SHOWN} more difference(s)")
    if not lines and [o.model_dump_json() for o in saved.operations] != [
        o.model_dump_json() for o in fresh.operations
    ]:
        problems.append("the operations are not in the order the planner runs them")
    return problems
