"""Where the service's words go: the console, the per-box logs and the global log.

The seed's service logged to `<ip>/maintenance.log` (per box) and `maintenance.log` (global, one
line per event) in the format `<ISO-8601 UTC>: <ip>: info|error: <text>`, and the console output
of a run ended up in `<ip>/maintenance-output.log`. `SessionLog` keeps that: every printed line
is also appended to the box's output log, `info`/`error` also go to the per-box log, and
`event` also to the global log.

Nothing is written to the backup share before `share_ready()` confirms it is mounted (writing
to an unmounted mount point would leave a stray log in the empty directory), nor into a box
directory before `box_ready()`; lines meant for them are held back until then. A log that
cannot be written (a link, a FIFO, a directory, a full or read-only share) is reported once on
the console; the session then refuses to act (`broken`), and says why in the result record.

Every log write goes through `onbox.shareio` (Share.append): a log that is a link, a FIFO or a
device is refused with a one-line warning on the console, never followed or blocked on.
"""

import sys
from typing import Literal, TextIO

from onbox.logfile import append_share_log
from onbox.shareio import Share, ShareAccessError
from schema.layout import BOX_LOG, BOX_OUTPUT_LOG, GLOBAL_LOG

Level = Literal["info", "error"]
PROG = "testbox-maintenance"


class SessionLog:
    def __init__(self, ip: str = "unknown", *, out: TextIO | None = None) -> None:
        self.ip = ip
        self._out = out
        self._global: Share | None = None
        self._box: Share | None = None
        self._held_output: list[str] = []
        self._held_box: list[tuple[Level, str]] = []
        self._held_global: list[tuple[Level, str]] = []
        self._broken: dict[str, str] = {}  # path -> problem, each reported once

    # -- where the lines may go -------------------------------------------------------------

    def share_ready(self, backup: Share) -> None:
        """The backup share is mounted: the global log may be written from now on."""
        self._global = backup
        held, self._held_global = self._held_global, []
        for level, text in held:
            self._append(backup, GLOBAL_LOG, level, text)

    def box_ready(self, box: Share) -> None:
        """The box directory exists: flush the held console output and per-box lines."""
        self._box = box
        output, self._held_output = self._held_output, []
        if output:
            self._append_output("".join(output))
        held, self._held_box = self._held_box, []
        for level, text in held:
            self._append(box, BOX_LOG, level, text)

    # -- writing ----------------------------------------------------------------------------

    def say(self, text: str, *, stream: Literal["out", "err"] = "out") -> None:
        """Print a line (console/journal) and keep it in the box's output log."""
        line = text if text.endswith("\n") else text + "\n"
        target = self._out or (sys.stderr if stream == "err" else sys.stdout)
        target.write(line)
        target.flush()
        if self._box is None:
            self._held_output.append(line)
        else:
            self._append_output(line)

    def info(self, text: str) -> None:
        self.say(text)
        self._box_line("info", text)

    def error(self, text: str) -> None:
        self.say(f"{PROG}: error: {text}", stream="err")
        self._box_line("error", text)

    def event(self, level: Level, text: str) -> None:
        """A line in the per-box log and the global log (session start/end, errors)."""
        if level == "error":
            self.error(text)
        else:
            self.info(text)
        if self._global is None:
            self._held_global.append((level, text))
        else:
            self._append(self._global, GLOBAL_LOG, level, text)

    def progress_line(self, text: str) -> None:
        """A progress line: console, output log and per-box log, never the global log."""
        self.info(text)

    # -- internals --------------------------------------------------------------------------

    def _box_line(self, level: Level, text: str) -> None:
        if self._box is None:
            self._held_box.append((level, text))
        else:
            self._append(self._box, BOX_LOG, level, text)

    def _append(self, share: Share, rel: str, level: Level, text: str) -> None:
        try:
            append_share_log(share, rel, self.ip, level, text)
        except ShareAccessError as exc:
            self._report_broken(share.path(rel), exc.problem)

    def _append_output(self, text: str) -> None:
        assert self._box is not None
        try:
            self._box.append(BOX_OUTPUT_LOG, text.encode("utf-8", "replace"))
        except ShareAccessError as exc:
            self._report_broken(self._box.path(BOX_OUTPUT_LOG), exc.problem)

    @property
    def broken(self) -> list[str]:
        """One line per log that could not be written (the session refuses to act then)."""
        return [f"cannot append to {where}: {problem}" for where, problem in self._broken.items()]

    def _report_broken(self, where: str, problem: str) -> None:
        if where not in self._broken:
            self._broken[where] = problem
            target = self._out or sys.stderr
            target.write(f"{PROG}: warning: cannot append to {where}: {problem}\n")
            target.flush()
