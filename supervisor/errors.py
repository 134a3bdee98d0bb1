"""Supervisor failures, each with the exit code the job ends with."""

from __future__ import annotations


class SupervisorError(Exception):
    """A failure that ends the job; `exit_code` is the supervisor's exit status."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(SupervisorError):
    """The function configuration, the script or the credentials are missing or invalid."""

    exit_code = 2


class EventError(SupervisorError):
    """The event could not be read or does not say what to stage."""

    exit_code = 2


class StageInError(SupervisorError):
    """The input object could not be downloaded."""

    exit_code = 3


class StageOutError(SupervisorError):
    """An output file could not be uploaded."""

    exit_code = 4


class ScriptError(SupervisorError):
    """The user's script failed; the job ends with the script's own exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ScriptTimeoutError(SupervisorError):
    """The user's script ran past the configured timeout and was killed."""

    exit_code = 124
