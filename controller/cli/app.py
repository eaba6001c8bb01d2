"""The typer application object and the consoles every command module shares."""

import typer
from rich.console import Console

app = typer.Typer(
    name="testboxctl",
    help="Keep a lab of PXE-booted test boxes backed up and restorable, from a desired-state file.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(highlight=False)
console_err = Console(stderr=True, highlight=False)
