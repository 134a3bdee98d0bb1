"""Event bridges: a watched store or queue whose new objects become jobs of one service.

A bridge is our built-in replacement for a DCNiOS flow (NiFi source → InvokeOSCAR): it names
its `type` (which source module reads it), the `service` its events go to, how often it looks
(`interval`), and where to look. Credentials are write-only: they are accepted on create and
update, stored privately, and answered masked (`MASK`), never in clear.

Unlike service definitions (lenient, as upstream), bridge definitions are strict: an unknown
key is an error naming it, so a misspelt `intervall` is not silently ignored.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from oscar.errors import FieldError, InvalidServiceError
from oscar.models.validation import pydantic_field_errors

BRIDGE_TYPES = ("webdav", "dcache", "sqs", "kafka", "minio")
# What an API answer shows in place of every stored credential; sent back unchanged in an
# update, it keeps the stored value (so `get -o yaml` → edit → apply round-trips).
MASK = "********"
_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# Which credentials each type reads; anything else is refused so a typo is not silently unused.
CREDENTIAL_KEYS: dict[str, tuple[str, ...]] = {
    "webdav": ("user", "password", "token"),
    "dcache": ("user", "password", "token"),
    "sqs": ("access_key", "secret_key"),
    "kafka": ("sasl_username", "sasl_password"),
    "minio": ("access_key", "secret_key"),
}


class InvalidBridgeError(InvalidServiceError):
    """A bridge definition failed validation; one entry per offending field."""

    what = "The bridge definition"


Credentials = dict[str, SecretStr]


class _Bridge(BaseModel):
    """What every bridge has."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(description="Unique name: a DNS-1123 label of at most 63 characters")
    type: str
    service: str = Field(description="The service every accepted event becomes a job of")
    enabled: bool = Field(True, description="false: defined but not running")
    interval: float = Field(
        5.0, gt=0, le=3600, description="Seconds between polls (or the longest wait of a poll)"
    )
    max_pending: int | None = Field(
        None,
        ge=1,
        description="Pending jobs of the service at which the bridge pauses "
        "(default OSCAR_BRIDGE_MAX_PENDING)",
    )
    credentials: Credentials = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if len(value) > 63 or not _NAME.fullmatch(value):
            raise ValueError(
                f"'{value}' must be 1-63 lowercase letters, digits or '-', "
                "starting and ending with a letter or digit"
            )
        return value

    @field_validator("service")
    @classmethod
    def _service_named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name the service the events go to")
        return value.strip()

    @field_validator("credentials")
    @classmethod
    def _known_credentials(cls, value: Credentials) -> Credentials:
        # An empty value is no credential (a form's untouched password field).
        value = {k: v for k, v in value.items() if v.get_secret_value()}
        kind = cls.model_fields["type"].default
        allowed = CREDENTIAL_KEYS.get(kind, ())
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            raise ValueError(
                f"unknown credential(s) {', '.join(unknown)} for a {kind} bridge; "
                f"expected {', '.join(allowed)}"
            )
        return value

    def secret(self, key: str) -> str:
        """A credential in clear ('' when not set)."""
        value = self.credentials.get(key)
        return value.get_secret_value() if value is not None else ""

    def public(self) -> dict[str, Any]:
        """The definition as the API answers it: credentials masked."""
        data = self.model_dump(mode="json", exclude={"credentials"})
        data["credentials"] = dict.fromkeys(sorted(self.credentials), MASK)
        return data

    def private(self) -> dict[str, Any]:
        """The whole definition, credentials in clear (for the private store only)."""
        data = self.model_dump(mode="json", exclude={"credentials"})
        data["credentials"] = {k: v.get_secret_value() for k, v in self.credentials.items()}
        return data


class WebDavBridge(_Bridge):
    """Polls a WebDAV folder (dCache's WebDAV door, any WebDAV server) with PROPFIND."""

    type: Literal["webdav"] = "webdav"
    provider: str = Field(
        "",
        description="`webdav.<id>` of the service whose endpoint and credentials are used "
        "(default: the provider of the service's first webdav input)",
    )
    endpoint: str = Field("", description="Server URL (default: the provider's hostname)")
    folder: str = Field("", description="Folder watched (default: the webdav input's path)")
    recursive: bool = True
    stable_polls: int = Field(
        2, ge=1, le=10, description="Polls a file must look the same in before it is taken"
    )
    verify: bool = True


class DCacheBridge(_Bridge):
    """Listens to dCache's server-sent events (`/api/v1/events`, inotify subscription)."""

    type: Literal["dcache"] = "dcache"
    endpoint: str = Field(description="dCache's frontend API, e.g. https://dcache:3880/api/v1")
    folder: str = Field(
        "", description="Namespace path watched (default: '/' + the service's webdav input path)"
    )
    verify: bool = True


class SqsBridge(_Bridge):
    """Long-polls an SQS queue of S3 event notifications (or of raw messages)."""

    type: Literal["sqs"] = "sqs"
    queue: str = Field(description="Queue name or URL")
    endpoint: str = Field("", description="SQS endpoint URL (default: AWS in `region`)")
    region: str = "us-east-1"
    payload: Literal["s3", "raw"] = Field(
        "s3", description="`s3`: S3 event notifications; `raw`: each message is one job's event"
    )
    visibility_timeout: int = Field(60, ge=1, le=43200)
    interval: float = Field(
        10.0, gt=0, le=20, description="Longest wait of one long poll (SQS allows 20 s)"
    )


class KafkaBridge(_Bridge):
    """Consumes a Kafka topic of S3/MinIO event records (or of raw messages)."""

    type: Literal["kafka"] = "kafka"
    bootstrap_servers: str = Field(description="host:port[,host:port...]")
    topic: str
    group_id: str = Field("", description="Consumer group (default: oscar-<bridge name>)")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    ssl_cafile: str = Field("", description="PEM file of the CAs trusted (on the server)")
    verify: bool = True
    payload: Literal["s3", "raw"] = "s3"
    interval: float = Field(1.0, gt=0, le=60)

    @property
    def consumer_group(self) -> str:
        """The consumer group this bridge commits its offsets in."""
        return self.group_id or f"oscar-{self.name}"


class MinioBridge(_Bridge):
    """Listens to a MinIO bucket (ListenBucketNotification) where MinIO cannot reach us."""

    type: Literal["minio"] = "minio"
    provider: str = Field(
        "",
        description="`minio.<id>` of the service (default: the provider of its first minio "
        "input); the bucket and prefix come from that input",
    )
    endpoint: str = Field("", description="MinIO URL (default: the provider's endpoint)")
    verify: bool = True
    reconcile: float = Field(
        60.0,
        gt=0,
        le=86400,
        description="Seconds between listings of the input folder, which take what the listen "
        "stream did not bring (MinIO keeps no backlog for listeners)",
    )


_BY_TYPE: dict[str, type[_Bridge]] = {
    "webdav": WebDavBridge,
    "dcache": DCacheBridge,
    "sqs": SqsBridge,
    "kafka": KafkaBridge,
    "minio": MinioBridge,
}
AnyBridge = WebDavBridge | DCacheBridge | SqsBridge | KafkaBridge | MinioBridge


def parse_bridge(data: Any, *, prefix: str = "", source: str | None = None) -> AnyBridge:
    """Validate one bridge definition; `InvalidBridgeError` names every offending field
    (prefixed by `prefix`, e.g. `bridges[0]`)."""

    def fail(field: str, message: str) -> InvalidBridgeError:
        path = f"{prefix}.{field}" if prefix and field else (prefix or field)
        return InvalidBridgeError([FieldError(path, message)], source)

    if not isinstance(data, dict):
        raise fail("", "a bridge must be a mapping")
    kind = data.get("type")
    model = _BY_TYPE.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise fail("type", f"must be one of {', '.join(BRIDGE_TYPES)} (got {kind!r})")
    try:
        return model.model_validate(data)  # type: ignore[return-value]
    except ValidationError as exc:
        raise InvalidBridgeError(pydantic_field_errors(exc, prefix), source) from None


def merge_credentials(new: AnyBridge, old: AnyBridge | None, given: bool) -> AnyBridge:
    """`new` with the stored credentials of `old` where the update sent none (`given` False)
    or sent a masked value back. Stored credentials the new type does not read (the update
    changed the type) are dropped."""
    if old is None:
        return new
    usable = CREDENTIAL_KEYS[new.type]
    if not given:
        kept = {k: v for k, v in old.credentials.items() if k in usable}
        return new.model_copy(update={"credentials": kept})
    kept = {}
    for key, value in new.credentials.items():
        if value.get_secret_value() != MASK:
            kept[key] = value
        elif key in old.credentials:
            kept[key] = old.credentials[key]
        else:
            raise InvalidBridgeError(
                [FieldError(f"credentials.{key}", f"'{MASK}' keeps a stored value; none is stored")]
            )
    return new.model_copy(update={"credentials": kept})
