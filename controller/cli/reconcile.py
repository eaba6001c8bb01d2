"""`reconcile`, `apply PLAN`, `status` and `unlock`: the commands that observe and converge.

Flow of `reconcile`: load the desired state → resolve the shares → the run sequence of
`controller.io.run` (markers → [lock] → observe → plan → show → [apply]). `--dry-run` never
takes the lock and never calls apply; it exits 2 when the plan has changes, 0 when in sync
(contract §5).
"""

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import RenderableType

from controller.cli.app import app, console, console_err, print_table, warn
from controller.cli.options import (
    LOCK_TIMEOUT,
    BackupRootOpt,
    CredentialsOpt,
    DesiredFileOpt,
    JsonOpt,
    LockTimeoutOpt,
    TftpRootOpt,
)
from controller.core.render_plan import plan_json, render_plan_text
from controller.core.savedplan import check_plan_roots
from controller.core.status import StatusReport, box_states
from controller.core.store_totals import store_totals
from controller.desired.load import load_desired
from controller.desired.revision import REVISION_ENV, resolve_revision
from controller.errors import ControllerError, PlanRefused
from controller.io import run
from controller.io.apply import ApplyFailed, ApplyReport
from controller.io.lock import break_lock
from controller.io.observe import observe
from controller.io.power.credentials import CredentialSource
from controller.io.power.run import needed_credentials
from controller.io.shares import resolve_shares
from controller.io.store_usage import store_usage
from onbox.atomic import atomic_write_text
from schema.plan import PLAN_FORMAT_VERSION, Plan

EXIT_CHANGES = 2

DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Show the plan, change nothing; exit 2 if it has changes.")
]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", help="Save the plan (JSON, with a fingerprint of the shares) to PLAN."),
]
AllowEmptyOpt = Annotated[
    bool,
    typer.Option(
        "--allow-empty", help="Allow a desired state without boxes to disarm every managed config."
    ),
]
MarkdownOpt = Annotated[
    bool,
    typer.Option(
        "--markdown", help="Print the plan as Markdown (a merge-request comment, a job summary)."
    ),
]
RevisionOpt = Annotated[
    str | None,
    typer.Option(
        "--revision",
        help=f"Revision of the desired state to record (default: ${REVISION_ENV}, else git).",
        show_default=False,
    ),
]


def _say(text: str) -> None:
    # Plain text straight to the console's file: rich's rendering of a 10,000-box plan takes
    # seconds, and this output is already laid out (and must not be wrapped).
    console.file.write(text)
    console.file.flush()


def _show(plan: Plan, as_json: bool, markdown: bool = False) -> None:
    if markdown:
        # Imported here, like the status page below: only --markdown needs it (start-up cost).
        from controller.core.render_markdown import render_plan_markdown

        _say(render_plan_markdown(plan))
    else:
        _say(plan_json(plan) if as_json else render_plan_text(plan))


def _save(plan: Plan, out: Path) -> None:
    try:
        atomic_write_text(out, plan_json(plan))
    except OSError as exc:
        raise ControllerError(f"{out}: cannot save the plan: {exc.strerror or exc}") from None


def _converge(start: Callable[[], run.RunOutcome], as_json: bool) -> None:
    """Run a converge and print its report; when some box failed, what was done is still shown
    (the failures themselves are the error's lines)."""
    try:
        outcome = start()
    except ApplyFailed as exc:
        _applied(exc.report, as_json)
        raise
    _applied(outcome.report, as_json)


def _applied(report: ApplyReport, as_json: bool) -> None:
    for op in report.power_skipped:
        warn(
            f"not power-cycled {op.box} ({op.ip}): its config for request {op.request_id} was "
            "not in place any more; run reconcile again"
        )
    for text in report.warnings:
        warn(text)
    for op in report.conflicts:
        warn(
            f"skipped {op.kind} {op.share}:{op.path}: the file changed since it was observed "
            "(a box finishing, a hand edit); run reconcile again"
        )
    text = f"applied {len(report.applied)} change(s)"
    if report.unchanged:
        text += f"; {len(report.unchanged)} already in place"
    # With --json, stdout carries only the plan document.
    if as_json:
        console_err.print(text, markup=False, highlight=False)
    else:
        _say(text + "\n")
    if report.power_failures:
        # contract §7: one line per box, after every other operation was applied; exit 1.
        for line in report.power_failures:
            console_err.print(f"testboxctl: error: {line}", markup=False, highlight=False)
        raise typer.Exit(1)


def _name_credentials(plan: Plan) -> None:
    """--dry-run contacts nothing and needs no secret; it only names what apply would use."""
    names = needed_credentials(plan.operations)
    if names:
        console_err.print(
            f"testboxctl: applying this plan needs credentials: {', '.join(names)}",
            markup=False,
            highlight=False,
        )


@app.command()
def reconcile(  # noqa: PLR0917  (typer maps parameters to options)
    file: DesiredFileOpt = None,
    tftp_root: TftpRootOpt = None,
    backup_root: BackupRootOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
    out: OutOpt = None,
    allow_empty: AllowEmptyOpt = False,
    lock_timeout: LockTimeoutOpt = LOCK_TIMEOUT,
    markdown: MarkdownOpt = False,
    revision: RevisionOpt = None,
    credentials: CredentialsOpt = None,
) -> None:
    """Observe, plan and (without --dry-run) apply. Exit 0 in sync or applied, 2 changes."""
    if markdown and as_json:
        raise ControllerError("--markdown and --json are two renderings of the plan: pick one")
    loaded = load_desired(file)
    rev = resolve_revision(revision, loaded.sources)
    shares = resolve_shares(loaded, tftp_root, backup_root)

    def show(plan: Plan) -> None:
        _show(plan, as_json, markdown)
        if out is not None:
            _save(plan, out)

    if dry_run:
        plan = run.dry_run(loaded.state, shares, allow_empty=allow_empty, revision=rev)
        show(plan)
        _name_credentials(plan)
        raise typer.Exit(0 if plan.empty else EXIT_CHANGES)
    _converge(
        lambda: run.reconcile(
            loaded.state,
            shares,
            credentials=CredentialSource(credentials),
            allow_empty=allow_empty,
            revision=rev,
            lock_timeout=lock_timeout,
            warn=warn,
            on_plan=show,
        ),
        as_json,
    )


def _load_plan(path: Path) -> Plan:
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ControllerError(f"{path}: cannot read the plan: {exc.strerror or exc}") from None
    try:
        return Plan.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "document"
        raise ControllerError(
            f"{path}: not a testboxctl plan (format version {PLAN_FORMAT_VERSION}): "
            f"{where}: {first['msg']}"
        ) from None


@app.command("apply")
def apply_command(  # noqa: PLR0917  (typer maps parameters to options)
    plan_file: Annotated[Path, typer.Argument(metavar="PLAN", help="A plan saved with --out.")],
    file: DesiredFileOpt = None,
    tftp_root: TftpRootOpt = None,
    backup_root: BackupRootOpt = None,
    as_json: JsonOpt = False,
    lock_timeout: LockTimeoutOpt = LOCK_TIMEOUT,
    credentials: CredentialsOpt = None,
) -> None:
    """Apply a saved plan; refuse (exit 1) if the shares changed since it was made, or if any
    operation is not what the planner derives now from the desired state (-f) and the shares."""
    plan = _load_plan(plan_file)
    loaded = load_desired(file)
    shares = resolve_shares(loaded, tftp_root, backup_root)
    wrong_roots = check_plan_roots(plan, str(shares.tftp), str(shares.backup))
    if wrong_roots:
        raise PlanRefused([f"{plan_file}: refused, nothing applied: {p}" for p in wrong_roots])
    _converge(
        lambda: run.apply_saved(
            plan,
            source=str(plan_file),
            credentials=CredentialSource(credentials),
            lock_timeout=lock_timeout,
            warn=warn,
            on_plan=lambda p: _show(p, as_json),
            check=run.rederive_check(loaded.state, shares, str(plan_file)),
            desired=loaded.state,
        ),
        as_json,
    )


def _status_table(report: StatusReport) -> RenderableType:
    # Imported here: only `status` prints a table (start-up cost; docs/architecture.md).
    import rich.box
    from rich.table import Table

    table = Table(
        title=f"testboxctl status ({report.observed_at:%Y-%m-%d %H:%M:%SZ})",
        box=rich.box.SIMPLE_HEAD,
    )
    for column in ("box", "ip", "action", "request", "state", "last result", "images", "newest"):
        table.add_column(column, no_wrap=column in ("box", "ip", "request"))
    for box in report.boxes:
        last = box.last_result
        last_text = "-" if last is None else f"{last.outcome} #{last.attempt}"
        state = box.state if box.in_sync else f"{box.state} (pending reconcile)"
        table.add_row(
            box.name,
            box.ip,
            box.action,
            box.request_id or "-",
            state,
            last_text,
            str(len(box.images)),
            _age(box.newest_backup_age_seconds),
        )
    return table


def _age(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


@app.command()
def status(  # noqa: PLR0917  (typer maps parameters to options)
    file: DesiredFileOpt = None,
    tftp_root: TftpRootOpt = None,
    backup_root: BackupRootOpt = None,
    as_json: JsonOpt = False,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            help="Also write the status page (one self-contained HTML file) to FILE.",
            metavar="FILE",
        ),
    ] = None,
    prometheus: Annotated[
        bool,
        typer.Option(
            "--prometheus", help="Print Prometheus metrics (textfile-collector format) instead."
        ),
    ] = False,
) -> None:
    """Per box: desired action, request state, last result, images, age of the newest backup."""
    if prometheus and as_json:
        raise ControllerError("--prometheus and --json are two formats of the status: pick one")
    loaded = load_desired(file)
    shares = resolve_shares(loaded, tftp_root, backup_root)
    observed = observe(shares)
    report = box_states(loaded.state, observed)
    if html is not None or prometheus:
        # Imported here: the page's jinja2 templates are ~30 ms of start-up that reconcile and
        # every other command would pay (docs/architecture.md, "Start-up").
        from controller.core.status_view import page_view, render_prometheus
        from controller.tools.status_page import write_status_page

        stored, chunks = store_usage(shares.backup)
        images = [i for box in observed.boxes.values() for i in box.images]
        totals = store_totals(images, stored, chunks)
        if html is not None:
            write_status_page(page_view(report, totals), html)
        if prometheus:
            _say(render_prometheus(report, totals))
            return
    if as_json:
        _say(report.model_dump_json(indent=2) + "\n")
        return
    print_table(_status_table(report))
    for box in report.boxes:
        for problem in box.problems:
            _say(f"problem of {box.name} ({box.ip}): {problem}\n")
    for ip in report.orphaned_boxes:
        _say(f"orphaned box directory (not in the desired state): {ip}\n")
    for name in report.foreign_configs:
        _say(f"foreign PXE config (not managed, left untouched): {name}\n")


@app.command()
def unlock(
    file: DesiredFileOpt = None,
    backup_root: BackupRootOpt = None,
) -> None:
    """Break the lock on the backup share (after making sure its holder is really gone)."""
    if backup_root:
        backup = Path(os.path.abspath(backup_root))
    else:
        backup = resolve_shares(load_desired(file)).backup
    removed, holder = break_lock(backup)
    if removed:
        _say(f"lock broken (was held by {holder or 'an unknown holder'})\n")
    else:
        _say("not locked\n")
