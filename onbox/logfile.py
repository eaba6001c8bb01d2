"""Appending to the seed-format logs on the backup share (global and per-box).

Lines are appended with one `write` on an O_APPEND descriptor, so lines from the controller and
from boxes writing at the same time never interleave within a line. The append goes through
`onbox.shareio.Share.append`: a log that is a symbolic link, a FIFO or a device is refused
(`ShareAccessError`), never followed, opened blocking or written through.
"""

from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from onbox.shareio import Share
from schema.layout import log_line

Level = Literal["info", "error"]


def utc_now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def append_share_log(share: Share, rel: str, ip: str, level: Level, text: str) -> None:
    """One seed-format line appended to `rel` inside `share` (raises ShareAccessError)."""
    share.append(rel, log_line(utc_now_iso(), ip, level, text))


def append_log(path: Path, ip: str, level: Level, text: str) -> None:
    """The same for a path: its directory is opened as a Share and the log itself is never
    followed if it is a link. Callers that hold a Share of the share root should use
    `append_share_log`, which also refuses links in the directories above."""
    with Share(Path(path).parent) as share:
        append_share_log(share, Path(path).name, ip, level, text)
