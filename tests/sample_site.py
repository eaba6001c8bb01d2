"""The sample `site:` the tests write into desired files: one source instead of a copy per suite.

Unit, CLI, loop, power and e2e tests all need a valid site block; each used to carry its own YAML
text, and the copies drifted (other maintenance paths, other defaults). `site_yaml` renders it
from `site`, so a test states only what it varies (share paths, network, kernel arguments,
defaults) and the rest stays the same everywhere.

The layout is fixed because tests assert `file:line` positions in it: line 1 `site:`, 2
`tftp_root`, 3 `backup_root`, 4 `maintenance:`, 5-8 kernel, initrd, nfs_server, nfsroot (one per
line, so a test can drop one), then `network`, `extra_args` (still under maintenance) and
`defaults`, each on one line in flow style, and only when given. `SITE_LINES` is the line count
of the plain block, for tests that compute where the next key lands.
"""

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

MAINTENANCE: dict[str, str] = {
    "kernel": "maintenance-boot/vmlinuz",
    "initrd": "maintenance-boot/initrd.img",
    "nfs_server": "10.0.2.2",
    "nfsroot": "/export/testbox-nfsroot",
}

# A scalar written bare in flow style; anything else (commas, colons, spaces, ...) is quoted.
_BARE = re.compile(r"[A-Za-z0-9_./=+-]+")


def site(
    tftp_root: str = "tftp",
    backup_root: str = "backup",
    *,
    network: Mapping[str, Any] | None = None,
    extra_args: Sequence[str] = (),
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The sample site as data (what `site_yaml` renders)."""
    maintenance: dict[str, Any] = dict(MAINTENANCE)
    if network is not None:
        maintenance["network"] = dict(network)
    if extra_args:
        maintenance["extra_args"] = list(extra_args)
    result: dict[str, Any] = {
        "tftp_root": tftp_root,
        "backup_root": backup_root,
        "maintenance": maintenance,
    }
    if defaults is not None:
        result["defaults"] = dict(defaults)
    return result


def site_yaml(
    tftp_root: str = "tftp",
    backup_root: str = "backup",
    *,
    network: Mapping[str, Any] | None = None,
    extra_args: Sequence[str] = (),
    defaults: Mapping[str, Any] | None = None,
) -> str:
    """The `site:` block as YAML text, ending in a newline (append `boxes:` to make a file)."""
    data = site(tftp_root, backup_root, network=network, extra_args=extra_args, defaults=defaults)
    lines = ["site:"]
    for key, value in data.items():
        if key == "maintenance":
            lines.append("  maintenance:")
            lines += [f"    {k}: {_flow(v)}" for k, v in value.items()]
        else:
            lines.append(f"  {key}: {_flow(value)}")
    return "\n".join(lines) + "\n"


def one_box_yaml(
    name: str,
    ip: str,
    action: str,
    *,
    disk: str,
    max_attempts: int,
    extra: str = "",
    network: Mapping[str, Any] | None = None,
    extra_args: Sequence[str] = (),
) -> str:
    """A whole desired file of the sample site and one box (`extra`: more of its flow keys,
    starting with ", "), with the defaults the lab suites share: its disk, keep_last 3 and
    `max_attempts`."""
    defaults = {"disks": [disk], "retention": {"keep_last": 3}, "max_attempts": max_attempts}
    return (
        site_yaml(network=network, extra_args=extra_args, defaults=defaults)
        + "boxes:\n"
        + f"  - {{name: {name}, ip: {ip}, action: {action}{extra}}}\n"
    )


def _flow(value: Any) -> str:
    """`value` in YAML flow style (JSON quoting for strings that are not plainly safe)."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    return text if _BARE.fullmatch(text) else json.dumps(text)


SITE_LINES = site_yaml().count("\n")
