"""free_space in the desired state and the request (contract §4): raw by default, stable ids."""

import pytest
from pydantic import ValidationError

from controller.core.boxfiles import request_json_text
from schema.desired import DesiredState
from schema.request import Request, request_id
from tests.lab_paths import MINIMAL_SITE

BOX = {"name": "tb1", "ip": "10.0.0.5", "action": "backup"}


def _state(defaults: dict[str, object] | None = None, **box: object) -> DesiredState:
    site = dict(MINIMAL_SITE)
    if defaults is not None:
        site["defaults"] = defaults
    return DesiredState.model_validate({"site": site, "boxes": [{**BOX, **box}]})


def test_default_is_raw_and_changes_nothing() -> None:
    state = _state()
    box = state.effective_boxes()[0]
    assert box.free_space == "raw"
    request = Request.for_box(box)
    assert request.free_space == "raw"
    # The request id and request.json are what they were before the field existed.
    assert request_id(box) == request_id(box.model_copy(update={"free_space": "raw"}))
    assert "free_space" not in request_json_text(request)
    assert Request.model_validate_json(request_json_text(request)).free_space == "raw"


def test_site_default_and_box_override() -> None:
    state = _state({"free_space": "skip"})
    assert state.effective_boxes()[0].free_space == "skip"
    state = _state({"free_space": "skip"}, free_space="raw")
    assert state.effective_boxes()[0].free_space == "raw"
    skip = _state(free_space="skip").effective_boxes()[0]
    raw = _state().effective_boxes()[0]
    assert request_id(skip) != request_id(raw)  # a new policy is a new request
    text = request_json_text(Request.for_box(skip))
    assert '"free_space": "skip"' in text
    assert Request.model_validate_json(text).free_space == "skip"


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(ValidationError, match="free_space"):
        _state(free_space="zero")
