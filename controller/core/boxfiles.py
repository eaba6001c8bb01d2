"""The exact bytes of the per-box files testboxctl writes on the backup share.

Deterministic renderings, so that "is the file as it should be?" is a string comparison and a
second run plans nothing.
"""

import json

from pydantic import ValidationError

from schema.request import Request


def request_json_text(request: Request) -> str:
    """`request.json`: the model's fields in declaration order, two-space indent, final newline.

    Without a known revision the `revision` key is left out, so a lab run without git writes
    the same bytes as before provenance existed; `free_space` likewise appears only when it is
    not the default (raw), so request files armed before the field existed still match.
    """
    exclude = {"revision"} if request.revision is None else set()
    if request.free_space == "raw":
        exclude.add("free_space")
    return request.model_dump_json(indent=2, exclude=exclude or None) + "\n"


def request_in_place(old_text: str | None, request: Request) -> bool:
    """Is `old_text` this request, whatever revision armed it? (contract §8: a new revision alone
    changes nothing on the shares.) True when the file is byte for byte what testboxctl would
    write for `request` with the revision it already records; a hand-edited or outdated file
    is not in place and gets rewritten (with the current revision)."""
    if old_text is None:
        return False
    if old_text == request_json_text(request):
        return True
    try:
        old = Request.model_validate_json(old_text)
    except ValidationError:
        return False
    return old_text == request_json_text(request.model_copy(update={"revision": old.revision}))


def parse_request(text: str | None) -> Request | None:
    """A request.json's content as a Request; None when absent or not a valid request."""
    if text is None:
        return None
    try:
        return Request.model_validate_json(text)
    except ValidationError:
        return None


def disk_list_text(disks: list[str]) -> str:
    """`disk-devices.lst` (seed format): one disk name per line."""
    return "".join(f"{disk}\n" for disk in disks)


def arm_record_text(request_id: str, arms: int) -> str:
    """`armed.json`: which request testboxctl armed, and how many times (see requeststate)."""
    return json.dumps({"request_id": request_id, "arms": arms}) + "\n"
