"""The request this boot is for: from the kernel command line, checked against the shares.

The box-specific PXE config the controller wrote boots the maintenance kernel with
`testbox-action-<action> testbox-request=<id>` in its APPEND line. The service acts only when
the shares agree: the box's config `pxelinux.cfg/<HEXIP>` exists (if not, this box booted with
an IP the config was not written for, or the request was already done) and `<ip>/request.json`
names the same request id, IP and action (if not, the controller re-armed the box with another
request after this boot started: acting on the stale one would do the wrong thing).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import cast, get_args

from pydantic import ValidationError

from onbox.errors import ServiceError
from onbox.shareio import (
    KIND_WORDS,
    RECORD_LIMIT,
    Share,
    ShareAccessError,
    ShareMissing,
    parse_json,
)
from schema.layout import (
    ACTION_ARG_PREFIX,
    PXE_CFG_DIR,
    REQUEST_ARG_PREFIX,
    REQUEST_FILE,
    hex_ip,
)
from schema.request import Request
from schema.types import ArmableAction

_ACTIONS: tuple[str, ...] = get_args(ArmableAction)


@dataclass(frozen=True)
class BootRequest:
    """What the kernel command line asks for."""

    action: ArmableAction
    request_id: str


def parse_cmdline(text: str) -> BootRequest:
    """`testbox-action-<action>` and `testbox-request=<id>` from a kernel command line."""
    actions: list[str] = []
    ids: list[str] = []
    for word in text.split():
        if word.startswith(ACTION_ARG_PREFIX):
            actions.append(word[len(ACTION_ARG_PREFIX) :])
        elif word.startswith(REQUEST_ARG_PREFIX):
            ids.append(word[len(REQUEST_ARG_PREFIX) :])
    if not actions:
        raise ServiceError(
            f"no {ACTION_ARG_PREFIX}<action> on the kernel command line: "
            "this boot was not started for a maintenance request"
        )
    if len(set(actions)) > 1:
        raise ServiceError(f"kernel command line names several actions: {', '.join(actions)}")
    action = actions[0]
    if action not in _ACTIONS:
        raise ServiceError(
            f"kernel command line: unknown action {action!r} (known: {', '.join(_ACTIONS)})"
        )
    if not ids:
        raise ServiceError(f"no {REQUEST_ARG_PREFIX}<id> on the kernel command line")
    if len(set(ids)) > 1:
        raise ServiceError(f"kernel command line names several requests: {', '.join(ids)}")
    rid = ids[0]
    if len(rid) != 12 or any(c not in "0123456789abcdef" for c in rid):
        raise ServiceError(f"kernel command line: request id {rid!r} is not 12 hex digits")
    return BootRequest(action=cast(ArmableAction, action), request_id=rid)


def read_cmdline(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise ServiceError(f"cannot read {path}: {exc.strerror or exc}") from None


def box_config(tftp: Share, ip: str) -> str:
    """The box's hex-IP PXE config (share-relative); its absence means this box was not armed
    (wrong IP). Anything but a regular file there is refused: the service never reads or
    removes through a link."""
    rel = f"{PXE_CFG_DIR}/{hex_ip(ip)}"
    kind = tftp.kind(rel)
    if kind == "missing":
        raise ServiceError(
            f"wrong IP? no PXE config {rel} for {ip} on the TFTP share "
            f"{tftp.root} (this box was not armed under this address, or the request is done)"
        )
    if kind != "file":
        raise ServiceError(f"{tftp.path(rel)}: {KIND_WORDS[kind]}; refusing to act on it")
    return rel


def load_request(box: Share, boot: BootRequest, ip: str) -> Request:
    """`<ip>/request.json`, validated, and checked against the command line and the IP."""
    path = box.path(REQUEST_FILE)
    try:
        raw = box.read_bytes(REQUEST_FILE, RECORD_LIMIT)
    except ShareMissing:
        raise ServiceError(f"{path}: missing: the box is not armed with a request") from None
    except ShareAccessError as exc:
        raise ServiceError(exc.message) from None
    try:
        parse_json(raw, path)  # one-line reasons for non-JSON, non-UTF-8, nesting too deep
        request = Request.model_validate_json(raw)
    except ShareAccessError as exc:
        raise ServiceError(exc.message) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ServiceError(f"{path}: {where}: {_one_line(first['msg'])}") from None
    if request.request_id != boot.request_id:
        raise ServiceError(
            f"{path}: request_id: {request.request_id} does not match this boot's request "
            f"{boot.request_id} (the armed request, {REQUEST_ARG_PREFIX} on the kernel command "
            "line): refused; if the box was re-armed, it picks the new request up on its next "
            "boot"
        )
    if request.ip != ip:
        raise ServiceError(f"{path}: ip: {request.ip} is not this box's IP {ip}")
    if request.action != boot.action:
        raise ServiceError(
            f"{path}: action: {request.action} does not match the kernel command line's "
            f"{boot.action}"
        )
    return request


def _one_line(text: str) -> str:
    """A pydantic message can quote the input; a hostile one must not add lines to a log."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= 200 else flat[:200] + "..."
