"""Command power driver: the box's argv (`power.command`) with `{name} {ip} {mac} {hexip}` filled
in, run without a shell, with a timeout; exit 0 is success.

No shell: each element is one argument whatever it holds, so a `;` or `$(...)` in a value is
just text (names and IPs are validated anyway). The command runs in its own session, and on
timeout the whole process group is killed, so a `ssh` that hangs or a script that left children
behind cannot stall the run. Its output (bounded) goes into the box's log.
"""

import contextlib
import os
import signal
import string
import subprocess

from controller.io.power import CycleResult, PowerError, PowerState
from schema.layout import hex_ip
from schema.power import PowerTarget
from schema.schedule import duration_seconds

OUTPUT_LIMIT = 64 * 1024
OUTPUT_LINES = 50


def command_argv(box: PowerTarget) -> list[str]:
    """The argv with the placeholders filled in (exactly; nothing else is interpreted)."""
    values = {"name": box.name, "ip": box.ip, "hexip": hex_ip(box.ip), "mac": box.mac}
    argv = []
    for item in box.power.command or []:
        fields = {f for _, f, _, _ in string.Formatter().parse(item) if f is not None}
        if "mac" in fields and box.mac is None:
            raise PowerError(
                f"{box.name} ({box.ip}): power command uses {{mac}} but the box has no mac"
            )
        argv.append(item.format(**values))
    return argv


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


class CommandDriver:
    def state(self, box: PowerTarget) -> PowerState | None:
        return None  # a command cannot tell

    def power_cycle(self, box: PowerTarget, request: str) -> CycleResult:
        argv = command_argv(box)
        where = f"{box.name} ({box.ip}): power command {argv[0]}"
        timeout = duration_seconds(box.power.timeout)
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise PowerError(
                f"{where}: cannot run: {exc.strerror or exc}", unreachable=True
            ) from None
        try:
            out, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            process.communicate()
            raise PowerError(
                f"{where}: timed out after {box.power.timeout}; killed", unreachable=True
            ) from None
        finally:
            _kill_group(process)  # children it left behind
        text = out[:OUTPUT_LIMIT].decode("utf-8", errors="replace")
        lines = [f"power command output: {line}" for line in text.splitlines()[-OUTPUT_LINES:]]
        if process.returncode != 0:
            raise PowerError(f"{where}: exit {process.returncode}: {' '.join(text.split())[-200:]}")
        return CycleResult(power_state=None, action="command", output=lines)
