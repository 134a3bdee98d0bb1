"""Real servers for tests: one module per service (install, start, wait, stop).

Each service module exposes:

* ``NAME`` and ``VERSION`` constants,
* ``install() -> None``: idempotent; builds or installs the service, caching binaries under
  ``~/.cache/oscar-testenv/<name>-<version>/``,
* ``is_installed() -> bool``,
* a context manager ``running(workdir: Path)`` yielding a handle with the endpoint and credentials,
* a session-scoped pytest fixture named after the service (registered in ``tests/conftest.py``).

``scripts/testenv.sh install`` calls ``python -m tests.services install`` for all of them.
"""
