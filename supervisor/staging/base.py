"""The storage-client interface, retries with backoff, and path-safety helpers."""

from __future__ import annotations

import logging
import posixpath
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger("supervisor")


class PermanentStorageError(Exception):
    """A storage failure that retrying cannot fix (missing object, denied access)."""


class StorageClient(ABC):
    """Downloads and uploads whole files, streaming (never whole-file reads into memory)."""

    @abstractmethod
    def download(self, bucket: str, key: str, destination: Path) -> None:
        """Write object `key` of `bucket` (a folder for WebDAV) to `destination`."""

    @abstractmethod
    def upload(self, source: Path, bucket: str, key: str) -> None:
        """Store the file `source` as object `key` of `bucket`."""


def with_retries(
    action: Callable[[], T], *, what: str, attempts: int = 4, base_delay: float = 0.5
) -> T:
    """Run `action`, retrying transient failures with exponential backoff and jitter."""
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except PermanentStorageError:
            raise
        except Exception as exc:
            if attempt == attempts:
                raise
            delay = base_delay * 2 ** (attempt - 1) * (1 + random.random() / 2)  # noqa: S311
            log.warning("%s failed (%s); retry %d/%d in %.1fs", what, exc, attempt, attempts, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def clean_relative(path: str) -> str:
    """A relative POSIX path with no `..`, `.` or empty segments; raises ValueError otherwise."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        raise ValueError(f"unsafe path {path!r}")
    return "/".join(parts)


def join_key(*parts: str) -> str:
    """Join key segments with single slashes."""
    return posixpath.join(*[p.strip("/") for p in parts if p.strip("/")])


def local_target(directory: Path, name: str) -> Path:
    """`directory/<base name of name>`, refusing names that would leave `directory`."""
    base = posixpath.basename(name.replace("\\", "/").rstrip("/"))
    if base in ("", ".", ".."):
        raise ValueError(f"object key {name!r} has no usable file name")
    target = (directory / base).resolve()
    if target.parent != directory.resolve():
        raise ValueError(f"object key {name!r} escapes {directory}")
    return target
