"""HTTP Basic credentials of the cluster admin: loading, first-start generation, checking."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from oscar.errors import ConfigurationError
from oscar.settings import Settings

PASSWORD_BYTES = 24  # 32 URL-safe characters, about 192 bits


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
    """Create the data directory, private to the current user."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"cannot create data directory {path}: {exc.strerror}") from exc


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
