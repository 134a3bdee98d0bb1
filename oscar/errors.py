"""Typed errors raised by the control plane; the API layer maps each to one HTTP status."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One problem in a user-supplied definition, located by a dotted field path."""

    field: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.field or '<root>'}: {self.message}"


class OscarError(Exception):
    """Base class of every error the control plane reports to its callers."""


class InvalidServiceError(OscarError):
    """A service definition failed validation; carries one entry per offending field."""

    #: What was invalid, as the API's answer names it.
    what = "The service specification"

    def __init__(self, errors: list[FieldError], source: str | None = None) -> None:
        self.errors = errors
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__(prefix + "; ".join(str(e) for e in errors))


class ServiceNotFoundError(OscarError):
    """No service with that name is registered."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"service '{name}' not found")


class ServiceExistsError(OscarError):
    """A service with that name is already registered."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"a service named '{name}' already exists")


class ConfigurationError(OscarError):
    """The server's own configuration is unusable (bad settings, unreadable data directory)."""


class BadRequestError(OscarError):
    """The request itself is malformed (a body that is not JSON, for instance)."""


class NotFoundError(OscarError):
    """The object named does not exist (a bucket, for instance); the message names it."""


class ConflictError(OscarError):
    """The request conflicts with the object's state (it exists already, it is not empty)."""


class UnauthorizedError(OscarError):
    """The caller's credentials are missing or were refused (a bad, expired or foreign
    token); the message says which."""


class ForbiddenError(OscarError):
    """The caller is authenticated but may not act on this object."""


class TooManyRequestsError(OscarError):
    """The backend is at its concurrency limit and the request waited as long as it may."""

    def __init__(self, message: str, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class BackendError(OscarError):
    """A backend (Kubernetes, Slurm, an object store) failed or refused; carries the cause."""


class BackendUnavailableError(BackendError):
    """A backend cannot be reached right now; the same call may work later (`retry_after` s)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class BackendTimeoutError(BackendError):
    """A backend did not answer in time."""


class StorageError(BackendError):
    """The object store refused or failed an operation (bucket setup, policies, events)."""


class ExecutorError(BackendError):
    """A backend command failed: the command, its exit code, stdout and stderr."""

    def __init__(
        self,
        message: str,
        argv: list[str] | None = None,
        exit_code: int | None = None,
        stdout: str = "",
        stderr: str = "",
    ) -> None:
        self.argv = list(argv or [])
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(message)


class NotSupportedError(OscarError):
    """The configured backend does not offer this operation (e.g. synchronous runs on HPC)."""
