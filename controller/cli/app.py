"""The typer application object and the consoles every command module shares."""

import typer
from rich.console import Console, RenderableType

app = typer.Typer(
    name="testboxctl",
    help="Keep a lab of PXE-booted test boxes backed up and restorable, from a desired-state file.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# soft_wrap: rich would otherwise wrap at 80 columns when not on a terminal, splitting the
# one-line-per-problem error output (contract §5) that scripts and CI logs rely on.
# emoji=False: messages quote the operator's values, and rich would turn `a:fire:b` into 'a🔥b'.
console = Console(highlight=False, soft_wrap=True, emoji=False)
console_err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def print_table(table: RenderableType) -> None:
    """Print a table; piped or captured output gets its natural width, not rich's 80 columns."""
    out = console if console.is_terminal else Console(file=console.file, width=200, highlight=False)
    out.print(table)


def warn(text: str) -> None:
    """`testboxctl: warning: ...` on stderr: the one warning format of every command."""
    console_err.print(f"testboxctl: warning: {text}", markup=False, highlight=False)
