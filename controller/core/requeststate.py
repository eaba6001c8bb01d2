"""Where a box's request stands (contract §3), from its desired request and its recorded results.

One function shared by the planner (should a managed PXE config be in place?) and `status`
(which of contract §5's states to show), so the two can never disagree.
"""

from dataclasses import dataclass
from typing import Literal

from schema.desired import EffectiveBox
from schema.observed import ObservedResult

BoxState = Literal["idle", "armed", "failed", "stalled", "done", "rescue"]


@dataclass(frozen=True, slots=True)
class Decision:
    armed: bool  # a managed PXE config (and request files) should be in place
    state: BoxState
    reason: str


def decide(
    box: EffectiveBox,
    request_id: str | None,
    result: ObservedResult | None,
    *,
    arms: int = 0,
    config_in_place: bool = True,
) -> Decision:
    """contract §3: done is never armed again; failures retry until `max_attempts`; rescue stays.

    `arms` is how many times testboxctl armed this request (its arm record), `config_in_place`
    whether the request's managed config is on the TFTP share now. A box that cannot record a
    result (share full or read-only) removes its config and records nothing; re-arming it every
    run would be an endless boot loop. So once the config is gone and the request was armed
    `max_attempts` times without succeeding, it is stalled, result or not. While the config is
    in place the box may be mid-attempt, so arms alone never disarm it.
    """
    if request_id is None:
        return Decision(False, "idle", "action none")
    unfinished = result is None or result.outcome == "failure"
    if unfinished and not config_in_place and arms >= box.max_attempts:
        recorded = "no result recorded" if result is None else f"last of {result.attempt} failed"
        return Decision(
            False,
            "stalled",
            f"attempt limit reached: armed {arms}/{box.max_attempts} times without success "
            f"({recorded})",
        )
    if result is None:
        state: BoxState = "rescue" if box.action == "rescue" else "armed"
        return Decision(True, state, f"{box.action} request {request_id} not done yet")
    if result.outcome == "success":
        return Decision(False, "done", f"request {request_id} done (succeeded)")
    if result.outcome == "rescue-ready":
        # The request id covers the action, so a rescue-ready result means the action is rescue.
        return Decision(True, "rescue", "rescue system ready; stays armed while action is rescue")
    if result.attempt >= box.max_attempts:
        return Decision(
            False,
            "stalled",
            f"attempt limit reached ({result.attempt}/{box.max_attempts} failed attempts)",
        )
    return Decision(
        True,
        "failed",
        f"attempt {result.attempt}/{box.max_attempts} failed; the box retries",
    )
