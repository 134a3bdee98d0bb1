"""Turning untrusted input into a `Service`: structural validation plus cross-field checks.

Every problem is reported as a `FieldError` whose path uses the upstream JSON keys
(`input[0].storage_provider`), so a 400 response or an FDL error names exactly what to fix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from oscar.errors import FieldError, InvalidServiceError
from oscar.models.service import Service
from oscar.models.storage import (
    DEFAULT_PROVIDER,
    INPUT_PROVIDER_TYPES,
    MOUNT_PROVIDER_TYPES,
    OUTPUT_PROVIDER_TYPES,
    StorageIOConfig,
)

# S3's general-purpose bucket naming rules (AWS "Bucket naming rules"); one copy, used by
# service validation and by the embedded store, so a name one accepts the other never refuses.
# Always `fullmatch`: `match` with `$` would accept a trailing newline.
_BUCKET_CHARS = re.compile(r"[a-z0-9][a-z0-9.-]*[a-z0-9]")
_IP_ADDRESS = re.compile(r"\d+\.\d+\.\d+\.\d+")
_FORBIDDEN_SEQUENCES = ("..", ".-", "-.")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def format_loc(loc: Sequence[str | int]) -> str:
    """`("input", 0, "path")` -> `input[0].path`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def pydantic_field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    """Convert a pydantic error into one `FieldError` per problem, paths prefixed by `prefix`."""
    errors = []
    for err in exc.errors(include_url=False):
        message = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if err["type"] == "missing":
            message = "is required"
        elif err["type"] == "literal_error":
            message = f"{message} (got {err.get('input')!r})"
        loc = (prefix, *err["loc"]) if prefix else err["loc"]
        errors.append(FieldError(format_loc(loc), message))
    return errors


def bucket_name_problem(name: str) -> str | None:
    """Why `name` is not a valid S3 bucket name, or None when it is.

    3-63 characters; lowercase letters, digits, '.' and '-'; starting and ending with a letter
    or digit; not an IP address; no '..', '.-' or '-.'; none of S3's reserved prefixes
    (`xn--`, ...) or suffixes (`-s3alias`, ...). The message names the bucket.
    """
    if not 3 <= len(name) <= 63:
        return f"bucket name '{name}' is not valid: it must be 3-63 characters long"
    if not _BUCKET_CHARS.fullmatch(name):
        return (
            f"bucket name '{name}' is not valid: only lowercase letters, digits, '.' and '-' "
            "are allowed, and it must start and end with a letter or digit"
        )
    if _IP_ADDRESS.fullmatch(name):
        return f"bucket name '{name}' is not valid: it must not be formatted as an IP address"
    for sequence in _FORBIDDEN_SEQUENCES:
        if sequence in name:
            return f"bucket name '{name}' is not valid: it must not contain '{sequence}'"
    for prefix in _RESERVED_PREFIXES:
        if name.startswith(prefix):
            return f"bucket name '{name}' is not valid: the prefix '{prefix}' is reserved by S3"
    for suffix in _RESERVED_SUFFIXES:
        if name.endswith(suffix):
            return f"bucket name '{name}' is not valid: the suffix '{suffix}' is reserved by S3"
    return None


def _io_errors(
    svc: Service, role: str, entries: Sequence[tuple[Any, StorageIOConfig]], allowed: frozenset[str]
) -> list[FieldError]:
    errors = []
    for index, entry in entries:
        where = f"{role}{'' if index is None else f'[{index}]'}"
        kind, provider_id = entry.provider_type, entry.provider_id
        if kind not in allowed:
            errors.append(
                FieldError(
                    f"{where}.storage_provider",
                    f"'{kind}' cannot be used as {role}; use one of " + ", ".join(sorted(allowed)),
                )
            )
        elif entry.storage_provider != DEFAULT_PROVIDER and not svc.storage_providers.has(
            kind, provider_id
        ):
            errors.append(
                FieldError(
                    f"{where}.storage_provider",
                    f"'{entry.storage_provider}' is not defined in storage_providers.{kind}",
                )
            )
        if kind in ("minio", "s3") and (problem := bucket_name_problem(entry.bucket)):
            errors.append(FieldError(f"{where}.path", problem))
    return errors


def semantic_errors(svc: Service) -> list[FieldError]:
    """Cross-field problems pydantic cannot see field by field (references, bucket names)."""
    errors = _io_errors(svc, "input", list(enumerate(svc.input)), INPUT_PROVIDER_TYPES)
    errors += _io_errors(svc, "output", list(enumerate(svc.output)), OUTPUT_PROVIDER_TYPES)
    if svc.mount is not None:
        errors += _io_errors(svc, "mount", [(None, svc.mount)], MOUNT_PROVIDER_TYPES)
    members = [("replicas", i, r) for i, r in enumerate(svc.replicas)]
    if svc.federation:
        members += [("federation.members", i, r) for i, r in enumerate(svc.federation.members)]
    for where, index, replica in members:
        if replica.type == "oscar" and replica.cluster_id not in svc.clusters:
            errors.append(
                FieldError(
                    f"{where}[{index}].cluster_id",
                    f"cluster '{replica.cluster_id}' is not defined in clusters",
                )
            )
    if svc.visibility == "restricted" and not svc.allowed_users:
        errors.append(
            FieldError("allowed_users", "must list at least one user when visibility is restricted")
        )
    return errors


_SURROGATES = re.compile("[\ud800-\udfff]")


def _printable(path: str) -> str:
    """A field path that can be sent as UTF-8: surrogates in keys become `\\udxxx`."""
    return path.encode("utf-8", "backslashreplace").decode("utf-8")


def _unencodable_field(data: object) -> str | None:
    """The path of the first key or string holding a lone UTF-16 surrogate (`"\\udfff"` in
    JSON): such text cannot be stored or sent anywhere as UTF-8."""
    stack: list[tuple[str, object]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str) and _SURROGATES.search(value):
            return _printable(path)
        if isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and _SURROGATES.search(key):
                    return _printable(where)
                stack.append((where, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{index}]", item) for index, item in enumerate(value))
    return None


def parse_service(data: object, *, source: str | None = None) -> Service:
    """Validate untrusted data (a decoded JSON/YAML object) into a `Service`.

    Raises `InvalidServiceError` listing every problem found, each with its field path.
    """
    if not isinstance(data, dict):
        raise InvalidServiceError(
            [FieldError("", f"a service must be an object, not {type(data).__name__}")], source
        )
    unencodable = _unencodable_field(data)
    if unencodable is not None:
        message = "holds a lone UTF-16 surrogate (e.g. \\udfff), which is not valid text"
        raise InvalidServiceError([FieldError(unencodable, message)], source)
    try:
        svc = Service.model_validate(data)
    except ValidationError as exc:
        raise InvalidServiceError(pydantic_field_errors(exc), source) from None
    errors = semantic_errors(svc)
    if errors:
        raise InvalidServiceError(errors, source)
    return svc
