"""`testboxctl`: the only place in the controller that prints or exits.

Commands live in the modules of this package, one concept each; they raise `ControllerError` or
`OnboxError` for anything a user should read, and `main` turns those into one line on stderr
and the error's exit code.
"""

import sys

import click
import typer

# Importing the command modules registers their commands on `app`.
from controller.cli import commands as _commands  # noqa: F401  (registration side effect)
from controller.cli.app import app, console_err
from controller.errors import ControllerError, DesiredStateError
from onbox.errors import OnboxError


def main() -> None:
    """Console-script entry point: run the app, map errors to exit codes in one place."""
    try:
        # Without standalone mode click returns (not raises) a typer.Exit's code: pass it on.
        code = app(standalone_mode=False)
    except DesiredStateError as exc:
        for problem in exc.problems:
            console_err.print(f"testboxctl: error: {problem}", markup=False, highlight=False)
        sys.exit(exc.exit_code)
    except (ControllerError, OnboxError) as exc:
        console_err.print(f"testboxctl: error: {exc.message}", markup=False, highlight=False)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(1)
    except click.exceptions.Abort:
        console_err.print("testboxctl: aborted")
        sys.exit(1)
    except KeyboardInterrupt:
        console_err.print("testboxctl: interrupted")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


__all__ = ["app", "main", "typer"]
