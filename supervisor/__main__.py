"""`oscar-supervisor` entry point. The event/staging pipeline arrives with the supervisor issue."""

from __future__ import annotations

import sys

from supervisor import __version__


def main(argv: list[str] | None = None) -> int:
    """Print the version; anything else is refused clearly until the pipeline exists."""
    args = sys.argv[1:] if argv is None else argv
    if args in (["--version"], ["version"]):
        print(f"oscar-supervisor {__version__}")
        return 0
    print("oscar-supervisor: event processing is not implemented yet", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
