"""The exact bytes of the per-box files testboxctl writes on the backup share.

Deterministic renderings, so that "is the file as it should be?" is a string comparison and a
second run plans nothing.
"""

from schema.request import Request


def request_json_text(request: Request) -> str:
    """`request.json`: the model's fields in declaration order, two-space indent, final newline."""
    return request.model_dump_json(indent=2) + "\n"


def disk_list_text(disks: list[str]) -> str:
    """`disk-devices.lst` (seed format): one disk name per line."""
    return "".join(f"{disk}\n" for disk in disks)
