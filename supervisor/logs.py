"""Upstream's log format: `%(asctime)s - supervisor - %(levelname)s - %(message)s`."""

from __future__ import annotations

import logging
import sys


def configure(level: str) -> None:
    """Log to stderr in upstream's format, keeping stdout for the response."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s - supervisor - %(levelname)s - %(message)s")
    )
    root = logging.getLogger("supervisor")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    # boto3/urllib3 chatter would bury the script's own lines.
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
