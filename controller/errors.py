"""Errors of the controller. Each carries its one-line message and the process exit code.

The CLI catches `ControllerError` (and `onbox.errors.OnboxError`) in one place and prints
`testboxctl: error: <message>`; nothing else in the controller prints or exits.
"""


class ControllerError(Exception):
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DesiredStateError(ControllerError):
    """The desired-state files are invalid. `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class ShareError(ControllerError):
    """A share is not mounted (marker missing) or cannot be read."""


class LockHeld(ControllerError):
    """Another run holds the lock on the backup share."""


class StalePlan(ControllerError):
    """The shares changed since a saved plan was made."""


class ApplyError(ControllerError):
    """A change could not be written."""


class PlanRefused(ControllerError):
    """A saved plan holds operations the planner would not produce now. One line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
