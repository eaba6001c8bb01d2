"""Hypothesis over SPEC §3's request rules: any result history, the decision follows the rules."""

from hypothesis import given
from hypothesis import strategies as st

from controller.core.requeststate import decide
from schema.desired import EffectiveBox, Retention
from schema.observed import ObservedResult
from schema.types import ACTIONS


@given(
    action=st.sampled_from(ACTIONS),
    max_attempts=st.integers(1, 10),
    result=st.none()
    | st.tuples(st.sampled_from(["success", "failure", "rescue-ready"]), st.integers(1, 12)),
)
def test_decision_follows_spec(
    action: str, max_attempts: int, result: tuple[str, int] | None
) -> None:
    box = EffectiveBox(
        name="tb1",
        ip="10.0.2.15",
        mac=None,
        action=action,
        disks=["sda"],
        image=None,
        request=None,
        retention=Retention(),
        max_attempts=max_attempts,
    )
    rid = None if action == "none" else "0123456789ab"
    observed = None
    if result is not None and rid is not None:
        outcome, attempt = result
        if outcome == "rescue-ready" and action != "rescue":
            outcome = "failure"
        observed = ObservedResult(request_id=rid, outcome=outcome, attempt=attempt)
    d = decide(box, rid, observed)

    if action == "none":
        assert (d.armed, d.state) == (False, "idle")
    elif observed is None:
        assert d.armed and d.state == ("rescue" if action == "rescue" else "armed")
    elif observed.outcome == "success":
        assert (d.armed, d.state) == (False, "done")  # done is never armed again
    elif observed.outcome == "rescue-ready":
        assert (d.armed, d.state) == (True, "rescue")
    elif observed.attempt >= max_attempts:
        assert (d.armed, d.state) == (False, "stalled")  # no endless boot loop
    else:
        assert (d.armed, d.state) == (True, "failed")
    assert d.reason
