"""Entry point of `testbox-maintenance` (placeholder until the service lands)."""

import sys


def main() -> None:
    print("testbox-maintenance: not implemented yet", file=sys.stderr)
    sys.exit(1)
