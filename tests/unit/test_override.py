"""One-box overrides recorded in a managed config: which are honoured (controller.core.override)."""

from controller.core.override import override_line, recorded_override
from schema.desired import EffectiveBox, Retention

BOX = EffectiveBox(
    name="tb-1",
    ip="10.0.2.15",
    mac=None,
    action="rescue",
    disks=["sda"],
    image=None,
    request="t1",
    retention=Retention(keep_last=3),
    max_attempts=3,
)


def _config(line: str) -> str:
    return f"# managed-by: testboxctl\n# request: abc\n{line}\nPATH bios\n"


def test_a_recorded_override_round_trips() -> None:
    assert recorded_override(_config(override_line(BOX)), "10.0.2.15") == BOX


def test_overrides_that_are_not_honoured() -> None:
    other_ip = override_line(BOX.model_copy(update={"ip": "10.0.2.16"}))
    disarmed = override_line(BOX.model_copy(update={"action": "none", "request": None}))
    restore = override_line(BOX.model_copy(update={"action": "restore", "image": "latest"}))
    for line in (
        other_ip,
        disarmed,
        restore,
        "# override: {not json",
        '# override: {"ip": "10.0.2.15", "name": "../x"}',
    ):
        assert recorded_override(_config(line), "10.0.2.15") is None
    # Only the header counts: a line after the first non-comment line is ignored.
    body = f"# managed-by: testboxctl\nPATH bios\n{override_line(BOX)}\n"
    assert recorded_override(body, "10.0.2.15") is None


def test_every_operation_kind_has_a_verb_in_every_renderer() -> None:
    """A new operation kind must not make the Markdown plan or apply's log raise KeyError."""
    from typing import get_args

    from controller.core.render_plan import OPERATION_VERB
    from controller.io import apply
    from schema.plan import OperationKind

    kinds = set(get_args(OperationKind))
    assert kinds <= set(OPERATION_VERB)
    assert kinds <= set(apply._VERBS)
