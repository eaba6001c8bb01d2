"""The Markdown plan (contract §8): golden files, and proof that it renders as intended.

Goldens pin the exact text for the golden lab of tests/golden (an armed box, a drifted config,
a removal, a changed request, notices), for a long diff collapsed in <details>, and for an
in-sync lab. markdown-it-py (a CommonMark parser with GitHub's table extension) then parses
the output: the table has one row per operation with four cells, every diff is a fenced `diff`
block, and text from the shares cannot add a cell, a tag or close a fence.
Regenerate after an intended change with `UPDATE_GOLDEN=1 pytest tests/review` and review it.
"""

import os
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from controller.core.render_markdown import COLLAPSE_LINES, MAX_CHARS, render_plan_markdown
from schema.plan import Notice, Operation, Plan
from tests.golden.test_plan_golden import golden_plan

GOLDEN = Path(__file__).parent / "golden"
REVISION = "3f1c2d4e5f60718293a4b5c6d7e8f90a1b2c3d4e"


def _parser() -> MarkdownIt:
    # GitHub and GitLab: CommonMark + tables, raw HTML allowed (for <details>).
    return MarkdownIt("commonmark", {"html": True}).enable("table")


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text()


def _rows(tokens: list[Token]) -> list[list[str]]:
    """Body rows of the (only) table, as the inline text of each cell."""
    rows: list[list[str]] = []
    in_body = False
    for tok in tokens:
        if tok.type == "tbody_open":
            in_body = True
        elif tok.type == "tbody_close":
            in_body = False
        elif in_body and tok.type == "tr_open":
            rows.append([])
        elif in_body and tok.type == "inline":
            rows[-1].append(tok.content)
    return rows


def _lab_plan(tmp_path: Path) -> Plan:
    return golden_plan(tmp_path).model_copy(update={"revision": REVISION})


def test_golden_plan(tmp_path: Path) -> None:
    _check_golden("plan.md", render_plan_markdown(_lab_plan(tmp_path)))


def test_golden_plan_renders_table_and_diffs(tmp_path: Path) -> None:
    plan = _lab_plan(tmp_path)
    tokens = _parser().parse(render_plan_markdown(plan))
    rows = _rows(tokens)
    assert len(rows) == len(plan.operations)
    assert all(len(row) == 4 for row in rows)
    assert {row[0] for row in rows} >= {"tb-new", "tb-drift", "tb-done", "tb-req"}
    # The removed box's config: a removal row, not attributed to a desired box.
    assert any(r[2].startswith("remove") and "not in the desired state" in r[0] for r in rows)
    fences = [t for t in tokens if t.type == "fence"]
    assert fences and all(t.info == "diff" for t in fences)
    drift = next(f for f in fences if "0A000210 (now)" in f.content)
    assert "+  MENU LABEL Maintenance (NFS)" in drift.content
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings == ["testboxctl plan", "Diffs", "Notices (nothing is changed for these)"]
    items = [t for t in tokens if t.type == "list_item_open"]
    assert len(items) == len(plan.notices) >= 2
    summary = tokens[tokens.index(next(t for t in tokens if t.type == "paragraph_open")) + 1]
    assert f"{len(plan.operations)} change(s)" in summary.content
    assert REVISION in summary.content


def _config_op(lines: int, box: str = "tb-long") -> Operation:
    old = "".join(f"line {n}\n" for n in range(lines))
    new = "".join(f"line {n}{' changed' if n % 2 else ''}\n" for n in range(lines))
    return Operation(
        kind="write-config",
        share="tftp",
        path="pxelinux.cfg/0A00020F",
        reason="drift: the config differs from what testboxctl renders",
        box=box,
        ip="10.0.2.15",
        request_id="0123456789ab",
        content=new,
        old_content=old,
    )


def _plan(*ops: Operation, notices: list[Notice] | None = None) -> Plan:
    return Plan(
        tftp_root="/lab/tftp",
        backup_root="/lab/backup",
        observed_at="2026-11-25T12:00:00Z",
        fingerprint="0" * 64,
        operations=list(ops),
        notices=notices or [],
        revision=None,
    )


def test_long_diff_is_collapsed_in_details() -> None:
    text = render_plan_markdown(_plan(_config_op(COLLAPSE_LINES)))
    _check_golden("plan-long-diff.md", text)
    tokens = _parser().parse(text)
    html = [t.content for t in tokens if t.type == "html_block"]
    assert any(h.startswith("<details>\n<summary>tb-long: rewrite <code>tftp:") for h in html)
    assert any(h.strip() == "</details>" for h in html)
    # The fence inside <details> is still a fence (the blank lines make it Markdown again).
    assert [t.info for t in tokens if t.type == "fence"] == ["diff"]
    rendered = _parser().render(text)
    assert '<pre><code class="language-diff">' in rendered
    short = render_plan_markdown(_plan(_config_op(4)))
    assert "<details>" not in short and "```diff" in short


def test_in_sync_plan() -> None:
    text = render_plan_markdown(_plan())
    _check_golden("plan-in-sync.md", text)
    assert "**In sync**: nothing to change; 0 notice(s); revision unknown" in text
    assert not [t for t in _parser().parse(text) if t.type == "table_open"]


@pytest.mark.parametrize(
    "hostile",
    ["a | b | c", "<script>alert(1)</script>", "```\n# heading", "`x` **bold** [l](http://x)"],
)
def test_text_from_the_shares_stays_inside_its_cell(hostile: str) -> None:
    op = _config_op(3).model_copy(update={"reason": hostile, "old_content": f"{hostile}\n"})
    notice = Notice(kind="problem", message=hostile, path=f"10.0.2.15/{hostile[:3]}")
    text = render_plan_markdown(_plan(op, notices=[notice]))
    tokens = _parser().parse(text)
    rows = _rows(tokens)
    assert len(rows) == 1 and len(rows[0]) == 4
    assert [t.type for t in tokens if t.type.startswith("heading_open")] == ["heading_open"] * 3
    assert not [t for t in tokens if t.type == "html_block"]
    inline_html = [c for t in tokens if t.children for c in t.children if c.type == "html_inline"]
    assert not inline_html
    assert not [c for t in tokens if t.children for c in t.children if c.type == "link_open"]
    fences = [t for t in tokens if t.type == "fence"]
    assert len(fences) == 1 and hostile.splitlines()[0] in fences[0].content


@pytest.mark.slow
def test_a_huge_plan_is_shortened_to_fit_a_comment() -> None:
    ops = [
        _config_op(30, box=f"tb-{n:04d}").model_copy(update={"ip": f"10.0.{n // 250}.{n % 250}"})
        for n in range(3000)
    ]
    notices = [Notice(kind="orphaned-box", ip=f"10.9.0.{n}", message="kept") for n in range(200)]
    plan = _plan(*ops, notices=notices)
    text = render_plan_markdown(plan)
    assert len(text) <= MAX_CHARS
    assert "**3000 change(s)** for **3000 box(es)**; 200 notice(s)" in text
    assert "3000 diff(s) not shown" in text
    tokens = _parser().parse(text)
    rows = _rows(tokens)
    assert 100 < len(rows) < 3000 and all(len(r) == 4 for r in rows)
    assert rows[-1][2] == f"{3000 - (len(rows) - 1)} more change(s)"
    assert not [t for t in tokens if t.type == "fence"]
    # Without a limit, everything is there.
    assert len(_rows(_parser().parse(render_plan_markdown(plan, max_chars=None)))) == 3000
    # Dropping the diffs alone is enough for a medium plan: all rows stay.
    medium = _plan(*ops[:300])
    short = render_plan_markdown(medium)
    assert len(_rows(_parser().parse(short))) == 300 and "300 diff(s) not shown" in short
