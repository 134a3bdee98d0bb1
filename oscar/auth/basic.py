"""HTTP Basic credentials of the cluster admin: loading, first-start generation, checking."""

from __future__ import annotations

import logging
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from oscar.errors import ConfigurationError
from oscar.settings import Settings

PASSWORD_BYTES = 24  # 32 URL-safe characters, about 192 bits
# The SQLite databases of the data directory (each with its -wal, -shm and -journal files):
# they hold job events, service tokens and secrets, and object metadata.
PRIVATE_DATABASES = ("jobs.db", "oscar.db", "s3/objects.db")
log = logging.getLogger("oscar.auth")


@dataclass(frozen=True)
class AdminCredentials:
    """The admin's username and password; `generated` is True only on the start that made it."""

    username: str
    password: str
    generated: bool = False

    def matches(self, username: str, password: str) -> bool:
        """Constant-time check of both parts (no early exit that would leak which one failed)."""
        user_ok = secrets.compare_digest(username.encode(), self.username.encode())
        password_ok = secrets.compare_digest(password.encode(), self.password.encode())
        return user_ok & password_ok


def ensure_data_dir(path: Path) -> None:
    """Create the data directory, private to the current user (0700), and make its databases
    private (0600), whoever created them.

    An existing directory open to others is made 0700 with a warning. The databases are
    created empty with mode 0600 before SQLite opens them (SQLite gives its -wal and -shm files
    the database's mode), and existing ones open to others are tightened with a warning.
    """
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            path.chmod(0o700)
            log.warning("data directory %s was mode %04o; it is now 0700", path, mode)
        for name in PRIVATE_DATABASES:
            database = path / name
            database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(database, os.O_CREAT | os.O_WRONLY, 0o600))
            for suffix in ("", "-wal", "-shm", "-journal"):
                _make_private(database.with_name(database.name + suffix))
    except OSError as exc:
        raise ConfigurationError(f"cannot create data directory {path}: {exc.strerror}") from exc


def _make_private(file: Path) -> None:
    try:
        mode = stat.S_IMODE(file.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        file.chmod(0o600)
        log.warning("%s was mode %04o; it is now 0600", file, mode)


def load_admin_credentials(settings: Settings) -> AdminCredentials:
    """Return the admin credentials, generating and storing a password on first start.

    A configured `OSCAR_PASSWORD` always wins. Otherwise the password lives in
    `<data_dir>/admin-password`, created atomically with mode 0600 so that two servers starting
    together on the same directory agree on one password.
    """
    if settings.password is not None and settings.password.get_secret_value():
        return AdminCredentials(settings.username, settings.password.get_secret_value())
    ensure_data_dir(settings.data_dir)
    path = settings.password_file
    password = secrets.token_urlsafe(PASSWORD_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return AdminCredentials(settings.username, _read_password(path))
    except OSError as exc:
        raise ConfigurationError(f"cannot create {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return AdminCredentials(settings.username, password, generated=True)


def _read_password(path: Path) -> str:
    try:
        password = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from exc
    if not password:
        raise ConfigurationError(f"{path} is empty: delete it to generate a new admin password")
    return password
