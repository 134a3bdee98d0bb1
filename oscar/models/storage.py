"""Storage providers and the input/output/mount entries that reference them."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from oscar.models.base import OscarModel

ProviderType = Literal["minio", "s3", "onedata", "webdav", "rucio"]
PROVIDER_TYPES: tuple[str, ...] = ("minio", "s3", "onedata", "webdav", "rucio")
# Which provider types each role may use (upstream create.go / supervisor).
# `s3` inputs take AWS S3 event notifications (through an SQS bridge, or posted to `/job`).
INPUT_PROVIDER_TYPES = frozenset({"minio", "s3", "webdav", "rucio"})
OUTPUT_PROVIDER_TYPES = frozenset({"minio", "s3", "onedata", "webdav"})
MOUNT_PROVIDER_TYPES = frozenset({"minio", "s3", "onedata", "webdav"})
DEFAULT_PROVIDER = "minio.default"

# Used with `fullmatch`: `match` with `$` would accept a trailing newline.
_PROVIDER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


class MinIOProvider(OscarModel):
    """Credentials of a MinIO (or any S3-compatible, path-style) object store."""

    endpoint: str = ""
    verify: bool = True
    access_key: str = ""
    secret_key: str = ""
    region: str = ""


class S3Provider(OscarModel):
    """Credentials of Amazon S3 (or, with `endpoint`, of another S3-compatible store)."""

    access_key: str = ""
    secret_key: str = ""
    region: str = ""
    # Not in upstream: empty means AWS; a URL points the supervisor at an S3-compatible
    # store that sends AWS-style (`aws:s3`) notifications.
    endpoint: str = ""
    verify: bool = True


class OnedataProvider(OscarModel):
    """Credentials of a Onedata space."""

    oneprovider_host: str = ""
    token: str = ""
    space: str = ""


class WebDavProvider(OscarModel):
    """Credentials of a WebDAV server (dCache's WebDAV door, for instance)."""

    hostname: str = ""
    login: str = ""
    password: str = ""


class RucioProvider(OscarModel):
    """Credentials of a Rucio data-management server."""

    host: str = ""
    account: str = ""
    rse: str = ""
    refresh_token: str = ""
    auth_host: str = ""
    oidc_audience: str = ""
    token_endpoint: str = ""


def _check_ids(value: dict[str, object]) -> dict[str, object]:
    for provider_id in value:
        if not _PROVIDER_ID.fullmatch(provider_id):
            raise ValueError(
                f"provider id {provider_id!r} must start with a letter or digit and contain only "
                "letters, digits, '-' and '_'"
            )
    return value


class StorageProviders(OscarModel):
    """Provider credentials by type, then by id: `storage_providers.minio.<id>`."""

    minio: dict[str, MinIOProvider] = Field(default_factory=dict)
    s3: dict[str, S3Provider] = Field(default_factory=dict)
    onedata: dict[str, OnedataProvider] = Field(default_factory=dict)
    webdav: dict[str, WebDavProvider] = Field(default_factory=dict)
    rucio: dict[str, RucioProvider] = Field(default_factory=dict)

    @field_validator("minio", "s3", "onedata", "webdav", "rucio", mode="before")
    @classmethod
    def _null_is_empty(cls, value: object) -> object:
        return {} if value is None else value

    @field_validator("minio", "s3", "onedata", "webdav", "rucio")
    @classmethod
    def _valid_ids(cls, value: dict[str, object]) -> dict[str, object]:
        return _check_ids(value)

    def has(self, provider_type: str, provider_id: str) -> bool:
        """Whether `<provider_type>.<provider_id>` is defined here."""
        return provider_id in getattr(self, provider_type, {})

    def merged_over(self, base: StorageProviders) -> StorageProviders:
        """Return `base` with this object's entries added, ours winning on the same id."""
        return StorageProviders.model_validate(
            {kind: {**getattr(base, kind), **getattr(self, kind)} for kind in PROVIDER_TYPES}
        )


def split_provider(reference: str) -> tuple[str, str]:
    """Split `minio.default` into its type and id; a bare type means its `default` id."""
    kind, _, provider_id = reference.partition(".")
    return kind, provider_id or "default"


# Object keys are at most 1024 bytes; a folder leaves room for the names of the files in it.
MAX_FOLDER_BYTES = 768


class StorageIOConfig(OscarModel):
    """One input, output or mount entry: a provider reference and a `bucket/folder` path."""

    storage_provider: str = DEFAULT_PROVIDER
    path: str
    suffix: list[str] = Field(default_factory=list)
    prefix: list[str] = Field(default_factory=list)
    # rclone options of a mount: upstream's `options` is one string; a list is also accepted.
    # Answered as sent, so a Go client decodes what it wrote.
    options: str | list[str] = ""

    @field_validator("storage_provider", mode="before")
    @classmethod
    def _normalise_provider(cls, value: object) -> object:
        if value is None or value == "":
            return DEFAULT_PROVIDER
        if not isinstance(value, str):
            return value
        kind, provider_id = split_provider(value.strip())
        kind = kind.lower()
        if kind not in PROVIDER_TYPES:
            raise ValueError(
                f"unknown provider type '{kind}' in '{value}'; expected one of "
                + ", ".join(PROVIDER_TYPES)
            )
        return f"{kind}.{provider_id}"

    @field_validator("options", mode="before")
    @classmethod
    def _null_options(cls, value: object) -> object:
        return "" if value is None else value

    @field_validator("suffix", "prefix", mode="before")
    @classmethod
    def _null_is_empty(cls, value: object) -> object:
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        return value

    @field_validator("path")
    @classmethod
    def _clean_path(cls, value: str) -> str:
        cleaned = value.strip().strip("/")
        if not cleaned:
            raise ValueError("must not be empty: give 'bucket' or 'bucket/folder'")
        segments = cleaned.split("/")
        if any(seg in ("", ".", "..") for seg in segments):
            raise ValueError(f"'{value}' must not contain empty, '.' or '..' segments")
        # A path without "/" may become a folder of the service's bucket (see Service).
        folder = cleaned.partition("/")[2] if "/" in cleaned else cleaned
        if len(folder.encode("utf-8", "surrogatepass")) > MAX_FOLDER_BYTES:
            raise ValueError(
                f"the folder after the bucket may be at most {MAX_FOLDER_BYTES} bytes "
                "(object keys are at most 1024)"
            )
        if any(ord(ch) < 32 for ch in cleaned) or "\\" in cleaned:
            raise ValueError(f"'{value}' must not contain control characters or backslashes")
        return cleaned

    @property
    def provider_type(self) -> str:
        """`minio` in `minio.default`."""
        return split_provider(self.storage_provider)[0]

    @property
    def provider_id(self) -> str:
        """`default` in `minio.default`."""
        return split_provider(self.storage_provider)[1]

    @property
    def bucket(self) -> str:
        """The first path segment."""
        return self.path.split("/", 1)[0]

    @property
    def folder(self) -> str:
        """Everything after the bucket ('' when the path is only a bucket)."""
        return self.path.partition("/")[2]
