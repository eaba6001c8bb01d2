"""Fuzz of the desired file: hundreds of mutations of the sample lab's file (issue 8).

Each mutation (a deleted or inserted character, a swapped or repeated line, a value replaced by a
hostile one: `..`, a newline, a kernel directive, a layout name, a huge number, a YAML anchor)
is loaded with `load_desired`. Two things must hold:
- no traceback: the loader either returns a state or raises `ControllerError` whose message
  names the file (every problem line starts with the file's path);
- nothing invalid accepted: an accepted state survives a strict re-validation, every box name
  is a legal file name that does not collide with the share layout, and the planner can render
  and plan it (against empty shares) without an error.
The mutations are drawn from a seeded `random.Random`, so a failure is reproducible by its seed.
"""

import random
import traceback
from datetime import UTC, datetime
from pathlib import Path

from controller.core.plan import make_plan
from controller.desired.load import load_desired
from controller.errors import ControllerError, DesiredStateError
from controller.tools.lab import SAMPLE_DESIRED
from schema.desired import DesiredState
from schema.layout import box_name_collision
from schema.observed import Observed
from schema.plan import Plan

MUTATIONS = 400
SAMPLE = SAMPLE_DESIRED.format(name="lab")

HOSTILE_VALUES = [
    "..",
    "../../etc",
    "/etc/passwd",
    '"a\\nAPPEND init=/bin/sh"',
    '"x\\tLABEL evil"',
    "results",
    "images",
    "sda.gz",
    "store",
    "maintenance.log",
    "999.1.1.1",
    "10.0.2.015",
    "-1",
    "0",
    "1e999",
    "99999999999999999999999",
    "null",
    "~",
    "[]",
    "{}",
    "&a x",
    "*a",
    "!!python/object:os.system",
    '"' + "a" * 300 + '"',
    "a" * 250,
    '"sda sdb"',
    "nvme0n1p1",
    "restore",
    "rescue",
    "yes",
    '"\\u0000"',
    "'",
    '"',
    "{{",
]
NASTY_CHARS = [*list(":-[]{},#&*!|>'\"%@`\n\t "), "\x00", "\u2028", "é", "0", "a"]


def _mutate(text: str, rng: random.Random) -> str:
    lines = text.splitlines(keepends=True)
    kind = rng.randrange(7)
    if kind == 0 and text:  # delete a character
        i = rng.randrange(len(text))
        return text[:i] + text[i + 1 :]
    if kind == 1:  # insert a character
        i = rng.randrange(len(text) + 1)
        return text[:i] + rng.choice(NASTY_CHARS) + text[i:]
    if kind == 2 and len(lines) > 1:  # swap two lines
        a, b = rng.sample(range(len(lines)), 2)
        lines[a], lines[b] = lines[b], lines[a]
        return "".join(lines)
    if kind == 3:  # repeat a line (duplicate keys, duplicate boxes)
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
        return "".join(lines)
    if kind == 4:  # drop a line
        del lines[rng.randrange(len(lines))]
        return "".join(lines)
    # Replace one scalar value (after a ': ') with a hostile one.
    spots = [i for i, c in enumerate(text) if c == ":" and text[i + 1 : i + 2] == " "]
    i = rng.choice(spots) + 2
    end = i
    while end < len(text) and text[end] not in ",}\n":
        end += 1
    return text[:i] + rng.choice(HOSTILE_VALUES) + text[end:]


def _check_accepted(state: DesiredState) -> None:
    """The oracle for "nothing invalid accepted"."""
    DesiredState.model_validate(state.model_dump())  # strict re-validation of every field
    for box in state.effective_boxes():
        assert box_name_collision(box.name) is None, box.name
        assert "/" not in box.name and box.name not in (".", "..")
    observed = Observed(
        tftp_root="/tftp",
        backup_root="/backup",
        observed_at=datetime(2026, 12, 1, tzinfo=UTC),
        fingerprint="0" * 64,
    )
    plan = make_plan(state, observed, allow_empty=True)
    Plan.model_validate(plan.model_dump())  # every operation path stays inside its share
    for op in plan.operations:
        if op.content is not None:
            assert "\x00" not in op.content


def test_mutated_desired_files_never_traceback_and_never_accept_invalid(tmp_path: Path) -> None:
    path = tmp_path / "desired.yaml"
    failures: list[str] = []
    outcomes = {"accepted": 0, "rejected": 0}
    for seed in range(MUTATIONS):
        rng = random.Random(seed)
        text = SAMPLE
        for _ in range(rng.randint(1, 3)):
            text = _mutate(text, rng)
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            loaded = load_desired(path)
        except DesiredStateError as exc:
            outcomes["rejected"] += 1
            bad = [p for p in exc.problems if not p.startswith(str(path))]
            if bad or not exc.problems:
                failures.append(f"seed {seed}: problem without the file name: {bad[:1]}")
            continue
        except ControllerError as exc:
            outcomes["rejected"] += 1
            if str(path) not in exc.message or "\n" in exc.message:
                failures.append(f"seed {seed}: not a one-line error naming the file: {exc}")
            continue
        except Exception:
            failures.append(f"seed {seed}: traceback:\n{traceback.format_exc()}\n{text}")
            continue
        outcomes["accepted"] += 1
        try:
            _check_accepted(loaded.state)
        except Exception:
            failures.append(f"seed {seed}: accepted but invalid:\n{traceback.format_exc()}\n{text}")
    assert not failures, "\n\n".join(failures[:5])
    # The fuzz is only worth something if it exercises both sides.
    assert outcomes["accepted"] > 20 and outcomes["rejected"] > 100, outcomes
