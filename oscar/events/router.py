"""Match object-created events to services by input bucket and prefix; build MinIO events."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote_plus

from oscar.models.service import Service
from oscar.models.storage import DEFAULT_PROVIDER


def input_prefixes(service: Service) -> list[tuple[str, str]]:
    """(bucket, key prefix) of each `minio.default` input of the service."""
    result = []
    for entry in service.input:
        if entry.storage_provider != DEFAULT_PROVIDER:
            continue
        bucket, _, folder = entry.path.strip("/").partition("/")
        result.append((bucket, f"{folder.strip('/')}/" if folder.strip("/") else ""))
    return result


def matching_services(services: list[Service], bucket: str, key: str) -> list[Service]:
    """Services with an input whose bucket is `bucket` and whose folder contains `key`."""
    return [
        service
        for service in services
        if any(b == bucket and key.startswith(p) for b, p in input_prefixes(service))
    ]


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
