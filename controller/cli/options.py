"""Options shared by several commands, defined once so their names and help never drift."""

from pathlib import Path
from typing import Annotated

import typer

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
