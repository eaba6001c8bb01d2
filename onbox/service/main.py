"""Entry point of `testbox-maintenance` (contract §5): parse the command line, run one session.

The only place in the service that exits: 0 when the action succeeded (or rescue is ready),
1 otherwise. Errors the service raises on purpose are handled inside the session (they become
log lines and result records); anything unexpected is reported here as a one-line error, still
exit 1, so the systemd journal shows why the boot did nothing.
"""

import sys
from collections.abc import Sequence

from onbox.service.args import parse_args


def main(argv: Sequence[str] | None = None) -> None:
    opts = parse_args(argv)
    # Imported after parsing so `--help` and usage errors stay fast (pydantic, the engine).
    from onbox.service.logs import SessionLog
    from onbox.service.session import run

    log = SessionLog(opts.ip or "unknown")

    try:
        code = run(opts, log)
    except KeyboardInterrupt:
        log.error("interrupted")
        code = 130
    except Exception as exc:  # the service must say why it stopped, in the journal and logs
        log.event("error", f"unexpected {type(exc).__name__}: {exc}")
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
