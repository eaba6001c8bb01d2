"""Options shared by several commands, defined once so their names and help never drift."""

from pathlib import Path
from typing import Annotated

import typer

from controller.io.lock import DEFAULT_LOCK_TIMEOUT

DesiredFileOpt = Annotated[
    Path | None,
    typer.Option(
        "-f",
        "--file",
        help="Desired-state file, or a directory of *.yaml files. Default: desired/ here.",
        show_default=False,
    ),
]
TftpRootOpt = Annotated[
    str | None,
    typer.Option(
        "--tftp-root",
        envvar="TESTBOX_TFTP_ROOT",
        help="TFTP share; overrides site.tftp_root of the desired file.",
        show_default=False,
    ),
]
BackupRootOpt = Annotated[
    str | None,
    typer.Option(
        "--backup-root",
        envvar="TESTBOX_BACKUP_ROOT",
        help="Backup share; overrides site.backup_root of the desired file.",
        show_default=False,
    ),
]
JsonOpt = Annotated[
    bool,
    typer.Option("--json", help="Print machine-readable JSON instead of text."),
]
LockTimeoutOpt = Annotated[
    float,
    typer.Option(
        "--lock-timeout",
        min=0,
        help="Seconds to wait for a lock held by another run before giving up (exit 1).",
    ),
]
# The default of every --lock-timeout, for the commands' signatures.
LOCK_TIMEOUT = DEFAULT_LOCK_TIMEOUT
CredentialsOpt = Annotated[
    Path | None,
    typer.Option(
        "--credentials",
        envvar="TESTBOX_CREDENTIALS_FILE",
        help="YAML file of BMC credentials (NAME: {username, password}); env wins per name.",
        show_default=False,
    ),
]
