"""Where the two shares are: the desired file's paths, overridden by flags or environment.

CI runners mount the shares at different places than an operator's laptop, so
`--tftp-root` / `--backup-root` (or `TESTBOX_TFTP_ROOT` / `TESTBOX_BACKUP_ROOT`) win over
`site.tftp_root` / `site.backup_root`. A relative override is relative to the current
directory (it was typed there); the file's own paths were already made absolute relative to
the file by `controller.desired.load`.
"""

import os
from dataclasses import dataclass
from pathlib import Path

from controller.desired.load import LoadedDesired
from controller.errors import ControllerError

TFTP_ROOT_ENV = "TESTBOX_TFTP_ROOT"
BACKUP_ROOT_ENV = "TESTBOX_BACKUP_ROOT"


@dataclass(frozen=True)
class Shares:
    """Absolute paths of the TFTP share and the backup share."""

    tftp: Path
    backup: Path


def _pick(flag: str | None, env: str, from_file: str | None, what: str) -> Path:
    value = flag or os.environ.get(env) or from_file
    if not value:
        raise ControllerError(
            f"no {what} root: give --{what.lower()}-root, set {env}, or set "
            f"site.{what.lower()}_root in the desired file"
        )
    return Path(os.path.abspath(os.path.expanduser(value)))


def resolve_shares(
    loaded: LoadedDesired | None, tftp_root: str | None = None, backup_root: str | None = None
) -> Shares:
    """The shares to use: flag (or its environment variable), else the desired file."""
    site = loaded.state.site if loaded is not None else None
    return Shares(
        tftp=_pick(tftp_root, TFTP_ROOT_ENV, site.tftp_root if site else None, "TFTP"),
        backup=_pick(backup_root, BACKUP_ROOT_ENV, site.backup_root if site else None, "backup"),
    )
