"""`python -m tests.services install [NAME...]`: install the real services the tests use."""

from __future__ import annotations

import importlib
import sys
import time

SERVICES = (
    "minio",
    "webdav",
    "slurm",
    "kubernetes",
    "interlink",
    "browser",
    "web",
    "sqs",
    "kafka",
    "keycloak",
    "busybox",
)


def main(argv: list[str]) -> int:
    """Install the named services (all when none is named), printing progress and timings."""
    if not argv or argv[0] not in {"install", "check"}:
        print("usage: python -m tests.services {install|check} [NAME...]", file=sys.stderr)
        return 2
    command, names = argv[0], argv[1:] or list(SERVICES)
    unknown = sorted(set(names) - set(SERVICES))
    if unknown:
        print(f"unknown service(s): {', '.join(unknown)}; known: {', '.join(SERVICES)}")
        return 2
    failed = []
    for name in names:
        module = importlib.import_module(f"tests.services.{name}")
        started = time.monotonic()
        try:
            if command == "install":
                print(f"[testenv] installing {name} {module.VERSION} ...", flush=True)
                module.install()
            state = "installed" if module.is_installed() else "MISSING"
        except Exception as error:  # report every service, then fail
            state = f"FAILED: {error}"
        if state != "installed":
            failed.append(name)
        print(f"[testenv] {name}: {state} ({time.monotonic() - started:.1f}s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
