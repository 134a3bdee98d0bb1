"""The MinIO provider of the cloud path: buckets, folders and bucket notifications.

Improves on upstream: MinIO gets **one** webhook target, configured once when MinIO starts
(`MINIO_NOTIFY_WEBHOOK_*_OSCAR`, pointing at the control plane's `/events/minio` with a bearer
token and a `queue_dir`), and the control plane routes each event to services by bucket and
prefix. Creating a service therefore only adds bucket notifications — MinIO is never restarted,
and events raised while the control plane is down wait in MinIO's queue.

Visibility: `public` buckets get an anonymous read/write bucket policy; `restricted` ones a
canned policy `oscar-<bucket>` attached to each allowed user that exists in MinIO; `private` ones
neither (only the control plane's credentials reach them).
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any

from oscar.events.router import input_prefixes
from oscar.models.service import Service
from oscar.models.storage import MinIOProvider
from oscar.registry.base import Registry
from oscar.storage.base import ServiceStorage, buckets_of_others, default_store_paths

log = logging.getLogger("oscar.storage")
TARGET_ID = "OSCAR"
EVENTS = ["s3:ObjectCreated:*"]


def webhook_arn(region: str = "") -> str:
    """The ARN MinIO gives the start-up webhook target `OSCAR`."""
    return f"arn:minio:sqs:{region}:{TARGET_ID}:webhook"


class MinIOStorage(ServiceStorage):
    """Service buckets on an external MinIO, with bucket notifications to the one target."""

    def __init__(self, provider: MinIOProvider, registry: Registry, arn: str | None = None) -> None:
        from minio import Minio

        endpoint = provider.endpoint.split("://", 1)[-1].rstrip("/")
        self._client = Minio(
            endpoint,
            access_key=provider.access_key,
            secret_key=provider.secret_key,
            secure=provider.endpoint.startswith("https://"),
            region=provider.region or None,
            cert_check=provider.verify,
        )
        from minio import MinioAdmin
        from minio.credentials import StaticProvider

        self._admin = MinioAdmin(
            endpoint=endpoint,
            credentials=StaticProvider(provider.access_key, provider.secret_key),
            secure=provider.endpoint.startswith("https://"),
            cert_check=provider.verify,
        )
        self.registry = registry
        # MinIO puts its region in target ARNs only when one is configured; try that first.
        self._arns = [arn] if arn else [webhook_arn(provider.region), webhook_arn()]

    def _notification(self, bucket: str, arn: str) -> Any:
        from minio.notificationconfig import NotificationConfig, PrefixFilterRule, QueueConfig

        queues = []
        for service in self.registry.list():
            for input_bucket, prefix in input_prefixes(service):
                if input_bucket != bucket:
                    continue
                queues.append(
                    QueueConfig(
                        EVENTS,
                        config_id=f"oscar-{service.name}-{len(queues)}",
                        prefix_filter_rule=PrefixFilterRule(prefix),
                        queue=arn,
                    )
                )
        return NotificationConfig(queue_config_list=queues)

    def _sync_notifications(self, bucket: str) -> None:
        """Rewrite the bucket's notifications from the registry (one rule per input prefix)."""
        from minio.error import S3Error

        for index, arn in enumerate(self._arns):
            try:
                self._client.set_bucket_notification(bucket, self._notification(bucket, arn))
            except S3Error as exc:
                if exc.code == "InvalidArgument" and index + 1 < len(self._arns):
                    continue  # that ARN does not exist on this MinIO: try the next form
                raise
            if index:
                self._arns = self._arns[index:]  # remember the form that worked
            return

    def _restrict(self, bucket: str, users: list[str]) -> None:
        """A policy `oscar-<bucket>` giving `users` (existing MinIO users) the bucket."""
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:*"],
                    "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                }
            ],
        }
        name = f"oscar-{bucket}"
        self._admin.policy_add(name, policy=policy)
        for user in users:
            try:
                self._admin.attach_policy([name], user=user)
            except Exception as exc:  # an unknown user or an already attached policy
                log.warning("cannot give %s access to %s: %s", user, bucket, exc)

    def _apply_visibility(self, bucket: str, visibility: str, users: list[str]) -> None:
        """`public`: anyone may list, read and write; `restricted`: the allowed users; else
        only the owner (the control plane's credentials)."""
        if visibility == "restricted":
            self._restrict(bucket, users)
        if visibility == "public":
            policy = {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": ["*"]},
                        "Action": ["s3:GetBucketLocation", "s3:ListBucket"],
                        "Resource": [f"arn:aws:s3:::{bucket}"],
                    },
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": ["*"]},
                        "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                        "Resource": [f"arn:aws:s3:::{bucket}/*"],
                    },
                ],
            }
            self._client.set_bucket_policy(bucket, json.dumps(policy))
        else:
            self._client.delete_bucket_policy(bucket)

    def setup_service(self, service: Service) -> None:
        """Create buckets and folder markers, set their visibility, subscribe input prefixes."""
        for bucket, folder in default_store_paths(service):
            if not self._client.bucket_exists(bucket):
                self._client.make_bucket(bucket)
            if folder:
                self._client.put_object(bucket, f"{folder}/", io.BytesIO(b""), 0)
        for bucket in {b for b, _ in default_store_paths(service)}:
            self._apply_visibility(bucket, service.visibility, service.allowed_users)
        for bucket in {b for b, _ in input_prefixes(service)}:
            self._sync_notifications(bucket)

    def teardown_service(self, service: Service) -> None:
        """Drop the service's notifications and delete buckets no other service uses."""
        in_use = buckets_of_others(self.registry, service)
        for bucket in {b for b, _ in default_store_paths(service)}:
            if not self._client.bucket_exists(bucket):
                continue
            if bucket in in_use:
                self._sync_notifications(bucket)  # the registry no longer has this service
                continue
            self._client.delete_bucket_notification(bucket)
            for item in self._client.list_objects(bucket, recursive=True):
                self._client.remove_object(bucket, item.object_name)
            self._client.remove_bucket(bucket)
            log.info("bucket deleted", extra={"bucket": bucket, "service": service.name})
