"""The plan as Markdown, for a merge-request comment or a CI job summary (contract §8).

`reconcile --dry-run --markdown` prints this; a pipeline posts it where reviewers read (a GitLab
MR note, `$GITHUB_STEP_SUMMARY`). Layout, top to bottom: a summary line (changes, boxes,
notices, the revision), one table row per change (box, IP, change, reason), the diff of every
file that is rewritten or removed in a fenced `diff` block (inside `<details>` when long, so a
big plan stays skimmable), then the notices.

Pure and deterministic like the text renderer (golden tests pin it). Every value from the plan
is escaped for where it lands: table cells escape Markdown and HTML (`|` would split a cell,
`<` could open a tag in the rendered comment), code spans and fences grow longer than any run
of backticks in their content, so nothing read from a share can break out of its block.
"""

import difflib
import re

from controller.core.render_plan import OPERATION_VERB
from schema.plan import Notice, Operation, Plan

# Diffs longer than this are collapsed into <details>.
COLLAPSE_LINES = 20
# GitHub refuses a comment longer than 65,536 characters (GitLab notes allow 1,000,000): a plan
# for a big change is shortened to fit rather than not posted at all (see render_plan_markdown).
MAX_CHARS = 65_536

_REWRITABLE = ("write-config", "write-request", "write-disk-list")
# Inline Markdown that could change the meaning of a cell's text: emphasis, links, code, cell
# separators, strikethrough. Line-start syntax (`#`, `-`, `>`) cannot occur mid-line.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def escape(text: str) -> str:
    """Text for a table cell or a list item: one line, no Markdown or HTML meaning."""
    one_line = " ".join(text.split())
    return _MD_SPECIAL.sub(r"\\\1", html_text(one_line))


def html_text(text: str) -> str:
    """Text with `&`, `<`, `>` and `"` as entities (for HTML blocks such as `<summary>`)."""
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def _longest_run(text: str, char: str) -> int:
    runs = re.findall(f"{re.escape(char)}+", text)
    return max((len(r) for r in runs), default=0)


def code(text: str) -> str:
    """An inline code span that no backtick in `text` can close early."""
    one_line = " ".join(text.split()).replace("|", "\\|")
    ticks = "`" * (_longest_run(one_line, "`") + 1)
    pad = " " if one_line.startswith("`") or one_line.endswith("`") else ""
    return f"{ticks}{pad}{one_line}{pad}{ticks}"


def fenced(body: str, info: str = "diff") -> list[str]:
    """A fenced code block whose fence is longer than any backtick run in `body`."""
    fence = "`" * max(3, _longest_run(body, "`") + 1)
    return [f"{fence}{info}", *body.splitlines(), fence]


def _target(op: Operation) -> str:
    return op.image_id or op.path if op.kind == "prune-image" else f"{op.share}:{op.path}"


def _verb(op: Operation) -> str:
    if op.kind in _REWRITABLE and op.old_content:
        return "rewrite"
    return OPERATION_VERB[op.kind]


def _diff(op: Operation) -> list[str]:
    """Unified diff lines of what the operation changes in a file that exists; [] if none."""
    if op.old_content is None or op.kind not in (*_REWRITABLE, "remove-config"):
        return []
    new = "" if op.kind == "remove-config" else (op.content or "")
    return list(
        difflib.unified_diff(
            op.old_content.splitlines(),
            new.splitlines(),
            fromfile=f"{op.path} (now)",
            tofile="/dev/null" if op.kind == "remove-config" else f"{op.path} (planned)",
            lineterm="",
        )
    )


def _group_key(op: Operation) -> tuple[int, ...]:
    """Boxes in IP order (as the text renderer), operations without an IP last."""
    if op.ip is None:
        return (1,)
    return (0, *map(int, op.ip.split(".")))


def _box_cell(op: Operation) -> str:
    if op.box is not None:
        return escape(op.box)
    return "*(not in the desired state)*" if op.ip is not None else "-"


def _summary(plan: Plan, boxes: int) -> str:
    revision = f"revision {code(plan.revision)}" if plan.revision else "revision unknown"
    if plan.empty:
        head = "**In sync**: nothing to change"
    else:
        head = f"**{len(plan.operations)} change(s)** for **{boxes} box(es)**"
    return f"{head}; {len(plan.notices)} notice(s); {revision}"


def _notice_line(notice: Notice) -> str:
    who = f"{escape(notice.box)}: " if notice.box else ""
    where = notice.path or notice.ip
    place = f"{code(where)}: " if where else ""
    return f"- **{notice.kind}**: {who}{place}{escape(notice.message)}"


def render_plan_markdown(
    plan: Plan, title: str = "testboxctl plan", max_chars: int | None = MAX_CHARS
) -> str:
    """The whole Markdown document; ends with a newline.

    When it is longer than `max_chars`, the diffs are left out first (with a line saying so),
    then the table and the notices are cut to as many rows as fit, each with a last line that
    counts the rest. The summary line always counts everything.
    """
    parts = _Parts(plan, title)
    full = parts.document(diffs=True, rows=None)
    if max_chars is None or len(full) <= max_chars:
        return full
    shorter = parts.document(diffs=False, rows=None)
    if len(shorter) <= max_chars:
        return shorter
    low, high = 0, max(len(parts.rows), len(parts.notices))
    while low < high:  # the most rows that fit (each part is rendered once; joining is cheap)
        mid = (low + high + 1) // 2
        if len(parts.document(diffs=False, rows=mid)) <= max_chars:
            low = mid
        else:
            high = mid - 1
    return parts.document(diffs=False, rows=low)


class _Parts:
    """Every line of the document, rendered once, to be assembled in full or shortened."""

    def __init__(self, plan: Plan, title: str) -> None:
        ordered = sorted(plan.operations, key=_group_key)  # stable: apply order within a box
        boxes = len({_group_key(op) for op in ordered})
        self.head = [
            f"### {escape(title)}",
            "",
            _summary(plan, boxes),
            "",
            f"TFTP share {code(plan.tftp_root)}, backup share {code(plan.backup_root)}, "
            f"observed {plan.observed_at:%Y-%m-%d %H:%M:%SZ}.",
        ]
        self.rows = [
            f"| {_box_cell(op)} | {escape(op.ip or '-')} | {_verb(op)} {code(_target(op))} "
            f"| {escape(op.reason)} |"
            for op in ordered
        ]
        changed = [(op, d) for op in ordered if (d := _diff(op))]
        self.changed = len(changed)
        self.diffs: list[str] = []
        for op, diff in changed:
            self.diffs += _diff_block(op, diff)
        self.notices = [_notice_line(n) for n in plan.notices]

    def document(self, *, diffs: bool, rows: int | None) -> str:
        lines = list(self.head)
        if self.rows:
            lines += ["", "| box | IP | change | reason |", "|---|---|---|---|"]
            lines += self.rows[:rows]
            if rows is not None and len(self.rows) > rows:
                more = len(self.rows) - rows
                lines.append(f"| … | | {more} more change(s) | not shown: too long |")
        if self.changed and not diffs:
            lines += [
                "",
                f"*{self.changed} diff(s) not shown: the plan is too long for a comment. "
                "`testboxctl reconcile --dry-run` in the job log shows them.*",
            ]
        if self.changed and diffs:
            lines += ["", "#### Diffs", *self.diffs]
        if self.notices:
            lines += ["", "#### Notices (nothing is changed for these)", ""]
            lines += self.notices[:rows]
            if rows is not None and len(self.notices) > rows:
                lines.append(f"- … {len(self.notices) - rows} more notice(s) not shown")
        return "\n".join(lines) + "\n"


def _diff_block(op: Operation, diff: list[str]) -> list[str]:
    what = f"{escape(op.box or op.ip or '-')}: {_verb(op)} {code(_target(op))}"
    block = fenced("\n".join(diff))
    if len(diff) <= COLLAPSE_LINES:
        return ["", what, "", *block]
    # A blank line after <summary> and before </details>: without it, renderers (GitHub,
    # GitLab, CommonMark) keep the fence as raw HTML text. An HTML block is not Markdown: the
    # summary is HTML-escaped text and <code>.
    summary = (
        f"{html_text(op.box or op.ip or '-')}: {_verb(op)} "
        f"<code>{html_text(_target(op))}</code> ({len(diff)} diff lines)"
    )
    return ["", "<details>", f"<summary>{summary}</summary>", "", *block, "", "</details>"]
