"""The MinIO provider of the cloud path: buckets, folders and bucket notifications.

Improves on upstream: MinIO gets **one** webhook target, configured once when MinIO starts
(`MINIO_NOTIFY_WEBHOOK_*_OSCAR`, pointing at the control plane's `/events/minio` with a bearer
token and a `queue_dir`), and the control plane routes each event to services by bucket and
prefix. Creating a service therefore only adds bucket notifications — MinIO is never restarted,
and events raised while the control plane is down wait in MinIO's queue.

Who reaches a bucket (`oscar.storage.minio_grants`): OIDC users are MinIO users named by their
subject, with derived secrets (`user_credentials`), all in the group `oscar-users`. A bucket's
user owner gets the policy `oscar-<bucket>_owner` (everything); `public` buckets an anonymous
read-and-list bucket policy and `oscar-<bucket>_public` for the group (read, write and delete
objects); `restricted` ones the canned policy `oscar-<bucket>` attached to each allowed user;
`private` ones neither. Buckets oscar made for a service take the service's owner and
visibility on every set-up; a bucket that existed before keeps its own. With USER isolation,
each allowed user's bucket is made `private` and owned by that user.

Jobs get a **service account** per service (`oscar.storage.scoped`): keys derived from the
control plane's secret, with an inline policy that reads the service's inputs and writes its
outputs; it is created or updated with the service and deleted with it.

Buckets oscar creates for a service are tagged `oscar-created`; deleting the service deletes
only those (when no other service uses them), never a bucket that existed before.

Errors: minio's `S3Error` (and admin-API failures) become `StorageError`, a MinIO that cannot
be reached (connection refused, timeouts, 502-504 answers) `BackendUnavailableError`; each
message names the endpoint and the bucket.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any

from oscar.errors import (
    BackendUnavailableError,
    ConflictError,
    ServiceNotFoundError,
    StorageError,
)
from oscar.events.router import input_prefixes
from oscar.models.service import DEFAULT_OWNER, Service
from oscar.models.storage import MinIOProvider
from oscar.registry.base import Registry
from oscar.storage.base import (
    ServiceStorage,
    buckets_of_others,
    default_store_buckets,
    default_store_paths,
    service_buckets,
)
from oscar.storage.buckets import BucketStorage
from oscar.storage.isolation import UserBucket, user_buckets
from oscar.storage.minio_grants import MinIOGrants
from oscar.storage.scoped import iam_policy, service_access, service_keys
from oscar.storage.users import check_subject

log = logging.getLogger("oscar.storage")
# The tag on buckets oscar created for a service (deleted with the last service using them).
CREATED_TAG = "oscar-created"
TARGET_ID = "OSCAR"
EVENTS = ["s3:ObjectCreated:*"]


def webhook_arn(region: str = "") -> str:
    """The ARN MinIO gives the start-up webhook target `OSCAR`."""
    return f"arn:minio:sqs:{region}:{TARGET_ID}:webhook"


# HTTP statuses that mean "MinIO is there but cannot serve now" (starting, overloaded, behind a
# proxy whose upstream is down), as opposed to a refusal of this particular request.
_UNAVAILABLE_STATUSES = {502, 503, 504}


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
        self.endpoint = provider.endpoint
        self.provider = provider
        self._admin_secret = provider.secret_key
        self.registry = registry
        self.grants = MinIOGrants(
            self._client, self._admin, provider.access_key, provider.secret_key
        )
        # MinIO puts its region in target ARNs only when one is configured; try that first.
        self._arns = [arn] if arn else [webhook_arn(provider.region), webhook_arn()]

    @contextmanager
    def _translated(self, action: str, bucket: str, *, target: str = "") -> Iterator[None]:
        """Turn the minio client's errors into `oscar.errors` types naming `action` and `bucket`.

        `action` completes "cannot <action> bucket '<bucket>'", e.g. "create"; `target`
        replaces "bucket '<bucket>'" (e.g. "user 'x'").
        """
        from minio.error import MinioAdminException, MinioException, S3Error, ServerError
        from urllib3.exceptions import HTTPError, MaxRetryError

        target = target or f"bucket '{bucket}'"
        what = f"cannot {action} {target} on MinIO at {self.endpoint}"
        try:
            yield
        except S3Error as exc:
            raise StorageError(f"{what}: {exc.code}: {exc.message}") from exc
        except ServerError as exc:
            if exc.status_code in _UNAVAILABLE_STATUSES:
                raise BackendUnavailableError(f"{what}: MinIO answered {exc}") from exc
            raise StorageError(f"{what}: {exc}") from exc
        except MinioAdminException as exc:
            # The admin client keeps the HTTP status only in `_code` (a string).
            if exc._code.isdigit() and int(exc._code) in _UNAVAILABLE_STATUSES:
                raise BackendUnavailableError(f"{what}: {exc}") from exc
            raise StorageError(f"{what}: {exc}") from exc
        except MinioException as exc:  # an answer the client could not make sense of
            raise StorageError(f"{what}: {exc}") from exc
        except HTTPError as exc:  # urllib3: refused, reset, timed out, after its retries
            reason = exc.reason if isinstance(exc, MaxRetryError) and exc.reason else exc
            raise BackendUnavailableError(
                f"cannot reach MinIO at {self.endpoint} (to {action} {target}): {reason}"
            ) from exc
        except ValueError as exc:  # the client's own argument checks, e.g. of bucket names
            raise StorageError(f"{what}: {exc}") from exc

    def buckets(self) -> BucketStorage:
        """`/system/buckets` on this MinIO (`oscar.storage.minio_buckets`)."""
        from oscar.storage.minio_buckets import MinIOBuckets

        return MinIOBuckets(self)

    def user_credentials(self, subject: str, display_name: str = "") -> MinIOProvider:
        """This MinIO with the keys of the subject's own MinIO user, made on the first call
        (in this process); later calls compute only. MinIO keeps no display name."""
        check_subject(subject)
        with self._translated("give keys to", "", target=f"user '{subject}'"):
            access, secret = self.grants.credentials(subject)
        return self.provider.model_copy(update={"access_key": access, "secret_key": secret})

    def _notification(self, bucket: str, arn: str) -> Any:
        from minio.notificationconfig import NotificationConfig, PrefixFilterRule, QueueConfig

        queues = []
        for service in self.registry.list():
            prefixes = input_prefixes(service)
            for input_bucket, prefix in dict.fromkeys(prefixes):
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

        with self._translated("subscribe to events of", bucket):
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

    def existing_buckets(self, service: Service) -> set[str]:
        """Which of the service's buckets exist on MinIO now."""
        found = set()
        for bucket in service_buckets(service):
            with self._translated("look up", bucket):
                if self._client.bucket_exists(bucket):
                    found.add(bucket)
        return found

    def setup_service(self, service: Service) -> None:
        """Create buckets and folder markers, give the buckets oscar made the service's owner
        and visibility, make the users' buckets (USER isolation), subscribe input prefixes."""
        for bucket, folder in default_store_paths(service):
            with self._translated("create", bucket):
                if not self._client.bucket_exists(bucket):
                    self._client.make_bucket(bucket)
                    self._client.set_bucket_tags(bucket, self._created_tags())
                if folder:
                    self._client.put_object(bucket, f"{folder}/", io.BytesIO(b""), 0)
        owner = service.owner or DEFAULT_OWNER
        for bucket in default_store_buckets(service):
            with self._translated(f"make {service.visibility}", bucket):
                if not self._created_by_oscar(bucket):
                    continue  # never another owner's bucket
                self.grants.tag_owner(bucket, owner)
                self.grants.set_owner(bucket, owner)
                self.grants.set_visibility(bucket, service.visibility, service.allowed_users)
        for user_bucket in user_buckets(service):
            self._setup_user_bucket(user_bucket)
        prefixes = input_prefixes(service)
        for bucket in dict.fromkeys(b for b, _ in prefixes):
            self._sync_notifications(bucket)
        self._apply_job_account(service)

    def _setup_user_bucket(self, user_bucket: UserBucket) -> None:
        """Make a user's bucket, `private` and owned by them, or check that the existing one
        is theirs (`ConflictError` otherwise); its visibility is set only when it is made."""
        bucket, subject = user_bucket.name, user_bucket.subject
        with self._translated("create", bucket):
            made = not self._client.bucket_exists(bucket)
            if made:
                self._client.make_bucket(bucket)
                self._client.set_bucket_tags(bucket, self._created_tags())
                self.grants.tag_owner(bucket, subject)
            owner = (self._client.get_bucket_tags(bucket) or {}).get("owner")
            if owner != subject:
                raise ConflictError(
                    f"bucket '{bucket}' (USER isolation, for '{subject}') already exists and "
                    f"belongs to '{owner or DEFAULT_OWNER}'"
                )
            for folder in user_bucket.folders:
                self._client.put_object(bucket, f"{folder}/", io.BytesIO(b""), 0)
            self.grants.set_owner(bucket, subject)
            if made:  # no grant a deleted bucket of the same name left behind
                self.grants.set_visibility(bucket, "private", [])

    @staticmethod
    def _created_tags() -> Any:
        from minio.commonconfig import Tags

        tags = Tags.new_bucket_tags()
        tags[CREATED_TAG] = "true"
        return tags

    def _created_by_oscar(self, bucket: str) -> bool:
        tags = self._client.get_bucket_tags(bucket)
        return bool(tags) and tags.get(CREATED_TAG) == "true"

    def _apply_job_account(self, service: Service) -> None:
        """Create, or update the policy of, the service account the service's jobs use."""
        from minio.error import MinioAdminException

        access_key, secret_key = service_keys(self._admin_secret, service.name)
        policy = iam_policy(service_access(service))
        with self._translated(f"give service '{service.name}' job keys for", "(its buckets)"):
            try:
                self._admin.add_service_account(
                    access_key=access_key,
                    secret_key=secret_key,
                    description=f"oscar: jobs of service {service.name}",
                    policy=policy,
                )
            except MinioAdminException as exc:
                if "already taken" not in str(exc) and "already exists" not in str(exc):
                    raise
                self._admin.update_service_account(
                    access_key=access_key, secret_key=secret_key, policy=policy
                )

    def _drop_job_account(self, service: Service) -> None:
        """Delete the service's job account, unless the registry (still) has the service: an
        update being undone keeps it, with the previous definition's policy."""
        from minio.error import MinioAdminException

        try:
            self.registry.get(service.name)
            return
        except ServiceNotFoundError:
            pass
        access_key, _ = service_keys(self._admin_secret, service.name)
        with self._translated(f"remove the job keys of service '{service.name}' for", "*"):
            try:
                self._admin.delete_service_account(access_key)
            except MinioAdminException as exc:
                if exc._code != "404":
                    raise

    def usage(self) -> tuple[int, int]:
        """(buckets, objects): the buckets listed now, the objects as MinIO's own periodic usage
        scan last counted them (0 until its first scan; counting here would list every object)."""
        with self._translated("count", "*"):
            buckets = len(self._client.list_buckets())
            info = json.loads(self._admin.info())
        return buckets, int((info.get("objects") or {}).get("count") or 0)

    def teardown_service(self, service: Service, keep: Collection[str] = ()) -> None:
        """Drop the service's notifications and job account, and delete the buckets oscar
        created for it that no other service uses."""
        self._drop_job_account(service)
        in_use = buckets_of_others(self.registry, service) | set(keep)
        for bucket in service_buckets(service):
            with self._translated("look up", bucket):
                exists = self._client.bucket_exists(bucket)
                created = exists and self._created_by_oscar(bucket)
            if not exists:
                continue
            if bucket in in_use or not created:
                self._sync_notifications(bucket)  # the registry no longer has this service
                continue
            with self._translated("delete", bucket):
                self._client.delete_bucket_notification(bucket)
                for item in self._client.list_objects(bucket, recursive=True):
                    self._client.remove_object(bucket, item.object_name)
                self._client.remove_bucket(bucket)
                self.grants.drop(bucket)
            log.info("bucket deleted", extra={"bucket": bucket, "service": service.name})
