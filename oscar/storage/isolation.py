"""`isolation_level: USER`: a bucket of their own for each allowed user of a service (upstream).

For a service with `isolation_level: USER` and `allowed_users`, each allowed user gets, for each
`minio.default` input bucket `B`, a bucket `B-<the subject's first 10 characters>`, as upstream
(`handlers/create.go`), holding the input folders of `B` and the service's output folders. The
bucket is the user's own (its recorded owner is the subject, `private`), and its name is listed
in the service's `bucket_list`, which the server sets: a client's `bucket_list` is replaced. A
user-owned service's owner is added to `allowed_users` when missing, as upstream.

Where upstream would make an invalid bucket name (a subject with capitals, '@' or '_' in its first
10 characters), the suffix is the first 10 hex digits of the subject's SHA-256 instead. Two
users whose buckets would have the same name are refused, naming both; upstream let them share.

The service's job key may read and write these buckets (`oscar.storage.scoped`), and the
supervisor writes a job's outputs back to the user's bucket its event came from.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from oscar.errors import FieldError, InvalidServiceError
from oscar.models.service import DEFAULT_OWNER, Service
from oscar.models.storage import DEFAULT_PROVIDER, StorageIOConfig
from oscar.models.validation import bucket_name_problem

SUFFIX_LENGTH = 10  # upstream's `uid[:10]`


@dataclass(frozen=True)
class UserBucket:
    """One allowed user's bucket for one input bucket of a service."""

    name: str
    subject: str
    inputs: tuple[str, ...]  # the input folders of the bucket it stands for ("": the whole)
    outputs: tuple[str, ...]  # the service's output folders on the default store

    @property
    def folders(self) -> tuple[str, ...]:
        """The folder markers the bucket holds."""
        return tuple(dict.fromkeys(f for f in (*self.inputs, *self.outputs) if f))


def user_bucket_name(bucket: str, subject: str) -> str:
    """`<bucket>-<subject[:10]>`, or `<bucket>-<sha256(subject)[:10]>` when that is no valid
    bucket name."""
    plain = f"{bucket}-{subject[:SUFFIX_LENGTH]}"
    if bucket_name_problem(plain) is None:
        return plain
    return f"{bucket}-{hashlib.sha256(subject.encode()).hexdigest()[:SUFFIX_LENGTH]}"


def _default_paths(entries: list[StorageIOConfig]) -> list[tuple[str, str]]:
    paths = []
    for entry in entries:
        if entry.storage_provider == DEFAULT_PROVIDER:
            bucket, _, folder = entry.path.strip("/").partition("/")
            paths.append((bucket, folder.strip("/")))
    return paths


def user_buckets(service: Service) -> list[UserBucket]:
    """The users' buckets of a USER-isolated service (none for any other), by input bucket,
    then in the order of `allowed_users`."""
    if service.isolation_level != "USER" or not service.allowed_users:
        return []
    inputs: dict[str, list[str]] = {}
    for bucket, folder in _default_paths(service.input):
        inputs.setdefault(bucket, []).append(folder)
    outputs = tuple(dict.fromkeys(f for _, f in _default_paths(service.output) if f))
    subjects = list(dict.fromkeys(user for user in service.allowed_users if user))
    return [
        UserBucket(user_bucket_name(bucket, subject), subject, tuple(folders), outputs)
        for bucket, folders in inputs.items()
        for subject in subjects
    ]


def user_input_prefixes(service: Service) -> list[tuple[str, str]]:
    """(user bucket, key prefix) of each input folder in the users' buckets, in the form of
    `oscar.events.router.input_prefixes`."""
    return [
        (user_bucket.name, f"{folder}/" if folder else "")
        for user_bucket in user_buckets(service)
        for folder in user_bucket.inputs
    ]


def isolate(service: Service) -> None:
    """Set what the server decides for USER isolation, in place: the owner among the allowed
    users and `bucket_list` (empty for any other service).

    Raises `InvalidServiceError` when a user's bucket cannot be named (too long a bucket, two
    users with the same name).
    """
    if service.isolation_level != "USER" or not service.allowed_users:
        service.bucket_list = []
        return
    owner = service.owner
    if owner and owner != DEFAULT_OWNER and owner not in service.allowed_users:
        service.allowed_users.append(owner)
    errors: list[FieldError] = []
    claimed: dict[str, str] = {}
    for user_bucket in user_buckets(service):
        name, subject = user_bucket.name, user_bucket.subject
        if (problem := bucket_name_problem(name)) is not None:
            errors.append(FieldError("allowed_users", f"the bucket of '{subject}': {problem}"))
        elif (other := claimed.setdefault(name, subject)) != subject:
            errors.append(
                FieldError(
                    "allowed_users",
                    f"'{other}' and '{subject}' would share the bucket '{name}' (their subjects "
                    f"start with the same {SUFFIX_LENGTH} characters)",
                )
            )
    if errors:
        raise InvalidServiceError(errors)
    service.bucket_list = list(claimed)
