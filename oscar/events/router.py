"""Match object-created events to services by input bucket and prefix; build MinIO events."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote_plus

from oscar.models.service import Service
from oscar.models.storage import DEFAULT_PROVIDER
from oscar.storage.isolation import user_input_prefixes


def input_prefixes(service: Service) -> list[tuple[str, str]]:
    """(bucket, key prefix) of each `minio.default` input of the service, and with USER
    isolation of the same folders in each user's bucket (an upload there is that user's)."""
    result = []
    for entry in service.input:
        if entry.storage_provider != DEFAULT_PROVIDER:
            continue
        bucket, _, folder = entry.path.strip("/").partition("/")
        result.append((bucket, f"{folder.strip('/')}/" if folder.strip("/") else ""))
    return list(dict.fromkeys(result + user_input_prefixes(service)))


def matching_services(services: list[Service], bucket: str, key: str) -> list[Service]:
    """Services with an input whose bucket is `bucket` and whose folder contains `key`."""
    return [
        service
        for service in services
        if any(b == bucket and key.startswith(p) for b, p in input_prefixes(service))
    ]


class InputIndex:
    """Which services' input folders contain an object: `bucket → [(prefix, service)]`.

    Kept in step with the registry by its owner (`oscar.registry.cached`), so that matching an
    event reads no service definition; not thread-safe on its own.
    """

    def __init__(self) -> None:
        self._by_bucket: dict[str, list[tuple[str, str]]] = {}

    def put(self, service: Service) -> None:
        """Index the service's inputs (replacing what was indexed under its name)."""
        self.remove(service.name)
        for bucket, prefix in input_prefixes(service):
            self._by_bucket.setdefault(bucket, []).append((prefix, service.name))

    def remove(self, name: str) -> None:
        """Forget the service's inputs."""
        for bucket in list(self._by_bucket):
            kept = [entry for entry in self._by_bucket[bucket] if entry[1] != name]
            if kept:
                self._by_bucket[bucket] = kept
            else:
                del self._by_bucket[bucket]

    def matching(self, bucket: str, key: str) -> list[str]:
        """Names of the services with an input folder containing `bucket/key`, sorted."""
        entries = self._by_bucket.get(bucket, ())
        return sorted({name for prefix, name in entries if key.startswith(prefix)})


def minio_event(
    event_name: str,
    bucket: str,
    key: str,
    size: int,
    etag: str,
    content_type: str,
    principal: str,
    when: datetime,
) -> dict[str, Any]:
    """The event MinIO posts to webhooks (upstream §5), for one object."""
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    return {
        "EventName": event_name,
        "Key": f"{bucket}/{key}",
        "Records": [
            {
                "eventVersion": "2.0",
                "eventSource": "minio:s3",
                "awsRegion": "",
                "eventTime": stamp,
                "eventName": event_name,
                "userIdentity": {"principalId": principal},
                "requestParameters": {
                    "principalId": principal,
                    "region": "",
                    "sourceIPAddress": "",
                },
                "responseElements": {},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "Config",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": principal},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {
                        "key": quote_plus(key, safe=""),
                        "size": size,
                        "eTag": etag,
                        "contentType": content_type,
                        "userMetadata": {"content-type": content_type},
                    },
                },
            }
        ],
    }
