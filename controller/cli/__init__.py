"""`testboxctl`: the only place in the controller that prints or exits.

Commands live in the modules of this package, one concept each; they raise `ControllerError` or
`OnboxError` for anything a user should read, and `run` turns those into one line on stderr and
the error's exit code (contract §5).

Usage errors (unknown command or option, missing argument, bad value) print typer's usage
message and exit 1, not click's usual 2: exit 2 means "changes found" for `reconcile --dry-run`,
and a script must never read a typo as "the lab needs reconciling".
"""

import functools
import gc
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import typer

# Importing the command modules registers their commands on `app`.
from controller.cli import commands as _commands  # noqa: F401  (registration side effect)
from controller.cli.app import app, console_err
from controller.errors import ControllerError, DesiredStateError
from onbox.errors import OnboxError

EXIT_USAGE = 1


def _click_exception_modules() -> list[ModuleType]:
    """The exception modules of every click the installed typer may raise from.

    typer 0.29 vendors click as `typer._click` (its exceptions are not `click`'s); older typer
    releases use the `click` package. Both are looked up, so a typer release that switches
    either way still gets a usage message instead of a traceback (tests/cli/test_usage.py).
    """
    found = []
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            found.append(importlib.import_module(name))
        except ImportError:
            continue
    return found


@functools.cache
def _classes(attribute: str, *extra: type[BaseException]) -> tuple[type[BaseException], ...]:
    """The classes named `attribute` in every click (plus `extra`), looked up on first use.

    Only `run`'s except clauses call this, and Python evaluates an except clause only when an
    exception reaches it: a command that succeeds never imports the `click` package (~10 ms of
    start-up; docs/architecture.md, "Start-up").
    """
    classes: list[type[BaseException]] = list(extra)
    for module in _click_exception_modules():
        cls = getattr(module, attribute, None)
        if isinstance(cls, type) and issubclass(cls, BaseException) and cls not in classes:
            classes.append(cls)
    return tuple(classes)


def _usage_errors() -> tuple[type[BaseException], ...]:
    return _classes("ClickException")


def _exits() -> tuple[type[BaseException], ...]:
    return _classes("Exit", typer.Exit)


def _aborts() -> tuple[type[BaseException], ...]:
    return _classes("Abort", typer.Abort)


def _exit_code(exc: BaseException) -> int:
    code: Any = getattr(exc, "exit_code", 1)
    return code if isinstance(code, int) else 1


def run(argv: Sequence[str] | None = None) -> int:
    """Run one command line (default: sys.argv) and return its exit code; never raises.

    The console script and the in-process CLI tests both call this, so the tests see exactly
    the error mapping an operator sees.
    """
    try:
        # Without standalone mode click returns (not raises) a typer.Exit's code: pass it on.
        code = app(
            args=list(argv) if argv is not None else None,
            prog_name="testboxctl",
            standalone_mode=False,
        )
    except DesiredStateError as exc:
        for problem in exc.problems:
            console_err.print(f"testboxctl: error: {problem}", markup=False, highlight=False)
        return exc.exit_code
    except (ControllerError, OnboxError) as exc:
        # One line per problem (an apply that failed for several boxes, a refused plan).
        for line in exc.message.splitlines() or [""]:
            console_err.print(f"testboxctl: error: {line}", markup=False, highlight=False)
        return exc.exit_code
    except _exits() as exc:
        return _exit_code(exc)
    except _usage_errors() as exc:
        # Usage line, "Try ... --help", then the error: click's own wording, on stderr.
        exc.show()  # type: ignore[attr-defined]
        return EXIT_USAGE
    except _aborts():
        console_err.print("testboxctl: aborted")
        return 1
    except KeyboardInterrupt:
        console_err.print("testboxctl: interrupted")
        return 130
    return code if isinstance(code, int) else 0


def main() -> None:
    """Console-script entry point."""
    # The tens of thousands of objects the imports made (modules, functions, pydantic's
    # schemas) live as long as the process; frozen, the collector no longer walks them in
    # every older-generation collection. Observing a 1,000-box lab allocates enough to
    # trigger such collections, and they were ~45 ms of a ~0.9 s `reconcile --dry-run`.
    # Only the console script does this: a process that imports the CLI (the tests) keeps
    # the collector as it was.
    gc.freeze()
    sys.exit(run())


__all__ = ["app", "main", "run", "typer"]
