"""`status --html FILE` in a real browser, and `status --prometheus` (contract §8, issue 11).

A lab of 12 boxes, two in each state (tests/review/lab12.py), real images in the real store.
The page is rendered by headless Chromium (Debian `chromium`) twice: to a PNG (kept in
tests/review/artifacts/ when the test fails, to look at) and through `--dump-dom`, and the test
reads the page's text from the DOM Chromium built: each box's state and words, the counts per
state, the store totals, the charts. The page must be self-contained: no script, no external
asset (a CI artifact is opened offline).
"""

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from controller.core.status_view import STATE_WORDS
from tests.review.helpers import ARTIFACTS, cli, need_program
from tests.review.lab12 import BACKUPS, BOXES, OUT_OF_SYNC, OVERDUE, STATES, build_lab12

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",  # root in CI containers
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = need_program("chromium", "chromium")
    return subprocess.run(
        [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )


class _Dom(HTMLParser):
    """Text by element id, the box rows' attributes and text, and every tag seen."""

    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, str] = {}
        self.rows: dict[str, dict[str, str]] = {}
        self.tags: list[tuple[str, dict[str, str]]] = []
        self._open: list[tuple[str, str | None, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if tag in ("meta", "br", "img", "input", "link", "circle", "polyline"):
            return
        self._open.append((tag, a.get("id"), []))
        if tag == "tr" and a.get("id", "").startswith("box-"):
            self.rows[a["id"][4:]] = {"state": a["data-state"], "in_sync": a["data-in-sync"]}

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            name, ident, text = self._open.pop()
            joined = " ".join("".join(text).split())
            if ident:
                self.by_id[ident] = joined
            if self._open:
                self._open[-1][2].append(" " + "".join(text) + " ")
            if name == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1][2].append(data)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("lab12")
    _, desired, _ = build_lab12(root)
    return root, desired


@pytest.mark.slow
def test_status_page_in_headless_chromium(lab: tuple[Path, Path], tmp_path: Path) -> None:
    _, desired = lab
    page = tmp_path / "status.html"
    done = cli("status", "-f", desired, "--html", page, "--json")
    assert done.returncode == 0, done.stderr
    report = {b["name"]: b for b in json.loads(done.stdout)["boxes"]}
    assert sorted(b["state"] for b in report.values()) == sorted(STATES * 2)

    html = page.read_text()
    png = tmp_path / "status.png"
    try:
        # Self-contained: no script, no external asset of any kind.
        assert "<script" not in html.lower()
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html, re.I)
        assert "@import" not in html and "url(" not in html

        chromium(page, tmp_path / "profile-png", f"--screenshot={png}", "--window-size=1500,1900")
        assert png.stat().st_size > 20_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        dom_text = chromium(page, tmp_path / "profile-dom", "--dump-dom").stdout
        dom = _Dom()
        dom.feed(dom_text)

        assert set(dom.rows) == {b["name"] for b in BOXES}
        for box in BOXES:
            name = box["name"]
            state = report[name]["state"]
            assert name.split("-")[1] == state  # the lab names each box after its state
            assert dom.rows[name]["state"] == state
            row = dom.by_id[f"box-{name}"]
            assert STATE_WORDS[state] in row and box["ip"] in row
            assert ("pending reconcile" in row) == (name == OUT_OF_SYNC)
            assert ("(overdue)" in row) == (name == OVERDUE)
        for state in STATES:
            assert dom.by_id[f"count-{state}"] == "2"
        # Store totals: as the status report's images add up, and as the store measured.
        logical = sum(i["logical_bytes"] for b in report.values() for i in b["images"])
        assert logical == sum(BACKUPS.values()) * 256 * 1024
        assert dom.by_id["total-images"] == str(sum(BACKUPS.values()))
        assert dom.by_id["total-logical"] == f"{logical / 1024 / 1024:.1f} MiB"
        assert re.fullmatch(r"\d+\.\d KiB", dom.by_id["total-stored"])
        for ratio in ("total-dedup", "total-compression", "total-ratio"):
            assert re.fullmatch(r"\d+\.\d\dx", dom.by_id[ratio]), ratio
        assert float(dom.by_id["total-dedup"][:-1]) > 1.0  # the disks share their base
        # One chart per box with backups, one dot per backup; the others say so.
        svgs = [a for tag, a in dom.tags if tag == "svg"]
        assert len(svgs) == len(BACKUPS)
        assert sum(1 for tag, _ in dom.tags if tag == "circle") == sum(BACKUPS.values())
        assert "no backups" in dom.by_id["box-tb-idle-02"]
        assert "read error at 3 GiB" in dom.by_id["box-tb-stalled-01"]
        assert "a1b2c3d4e5f6" in dom.by_id["box-tb-armed-02"]  # armed revision
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        for kept in (png, page):
            if kept.exists():
                shutil.copy(kept, ARTIFACTS / kept.name)
        print(f"status page artifacts kept in {ARTIFACTS}")
        raise


_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*"'
_SAMPLE = re.compile(
    rf"(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{{(?P<labels>({_LABEL},?)*)\}})? (?P<value>-?[0-9.e+]+)"
)


def test_prometheus_textfile(lab: tuple[Path, Path]) -> None:
    _, desired = lab
    done = cli("status", "-f", desired, "--prometheus")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.endswith("\n")
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind == "gauge"
            typed.add(name)
            continue
        if line.startswith("# HELP "):
            continue
        match = _SAMPLE.fullmatch(line)
        assert match, f"not exposition format: {line!r}"
        labels = dict(
            re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', match["labels"] or "")
        )
        samples.setdefault(match["name"], []).append((labels, float(match["value"])))
    assert set(samples) <= typed
    state = samples["testbox_box_state"]
    assert len(state) == 12 * 6
    for box in BOXES:
        mine = {lab["state"]: v for lab, v in state if lab["box"] == box["name"]}
        assert sum(mine.values()) == 1 and mine[box["name"].split("-")[1]] == 1
    images = {lab["box"]: v for lab, v in samples["testbox_box_images"]}
    assert images == {b["name"]: float(BACKUPS.get(b["name"], 0)) for b in BOXES}
    success = {lab["box"] for lab, _ in samples["testbox_box_last_success_timestamp_seconds"]}
    assert success == {"tb-done-01", "tb-done-02"}
    ages = {lab["box"] for lab, _ in samples["testbox_box_newest_image_age_seconds"]}
    assert ages == set(BACKUPS)
    in_sync = {lab["box"]: v for lab, v in samples["testbox_box_in_sync"]}
    assert [b for b, v in in_sync.items() if v == 0] == [OUT_OF_SYNC]
    overdue = samples["testbox_box_backup_overdue"]
    assert [(lab["box"], v) for lab, v in overdue] == [(OVERDUE, 1.0)]
    (logical,) = samples["testbox_store_logical_bytes"]
    assert logical[1] == sum(BACKUPS.values()) * 256 * 1024
    (stored,) = samples["testbox_store_stored_bytes"]
    assert 0 < stored[1] < logical[1]


def test_status_page_errors_are_one_line(lab: tuple[Path, Path], tmp_path: Path) -> None:
    _, desired = lab
    missing = tmp_path / "no-such-dir" / "status.html"
    done = cli("status", "-f", desired, "--html", missing)
    assert done.returncode == 1
    assert (
        done.stderr.count("\n") == 1 and f"{missing}: cannot write the status page" in done.stderr
    )
    both = cli("status", "-f", desired, "--prometheus", "--json")
    assert both.returncode == 1 and "pick one" in both.stderr
