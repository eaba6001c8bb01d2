"""Appending to the seed-format logs on the backup share (global and per-box).

Lines are appended with one `write` on an O_APPEND descriptor, so lines from the controller and
from boxes writing at the same time never interleave within a line.
"""

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from schema.layout import log_line


def utc_now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def append_log(path: Path, ip: str, level: Literal["info", "error"], text: str) -> None:
    line = log_line(utc_now_iso(), ip, level, text).encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
