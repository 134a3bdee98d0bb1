"""Object-store credentials of OIDC users, and what a user's key may do on the default store.

Each OIDC user (identified by the token's `sub`, the *subject*) gets store keys of their own,
handed to them alone by `/system/config`. On the embedded store the keys are derived with
HMAC-SHA256 from the store's admin secret and the subject, like the services' job keys
(`oscar.storage.scoped`) but with another purpose string and the access-key prefix `ouser`
(service keys start with `oscar`), so every replica computes the same keys without storing
secrets, and a user key can never be taken for a service key. On MinIO the access key is the
subject itself, as upstream names its MinIO users (`minio_user_name`), and the secret is derived
the same way.

The rule, the same on both stores (the embedded S3 port enforces it in `UserAccess.allows`,
MinIO through the policies of `oscar.storage.minio_grants`):

- on a bucket the user **owns** (its recorded owner is the subject): everything — read, list,
  look up, write and delete objects, multipart uploads, delete the bucket;
- on a **`public`** bucket, and on a **`restricted`** bucket whose `allowed_users` holds the
  subject: read, list, look up, write and delete objects (multipart uploads included), but not
  delete the bucket nor change its policy;
- anything else, `private` buckets of others included: `AccessDenied` (403), whether or not
  the bucket exists;
- ListBuckets lists only the buckets the user may reach; CreateBucket creates a `private`
  bucket owned by the user (embedded store; on MinIO users create buckets through
  `/system/buckets`, as MinIO cannot record who created a bucket).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Collection
from dataclasses import dataclass

from oscar.errors import BadRequestError
from oscar.models.service import DEFAULT_OWNER
from oscar.storage.scoped import ACCESS_KEY_PREFIX, Action

# Neither prefix starts the other: a user key is never read as a service key, nor the reverse.
USER_ACCESS_KEY_PREFIX = "ouser"
# Access keys with these prefixes are never an OIDC subject as it is: service job keys and
# derived user keys.
RESERVED_PREFIXES = (ACCESS_KEY_PREFIX, USER_ACCESS_KEY_PREFIX)
_ACCESS_KEY_LENGTH = 20  # MinIO's bounds: access keys of 3-20 characters, secrets of 8-40
_SECRET_KEY_LENGTH = 40
SUBJECT_MAX_LENGTH = 255
# What a user may do on a bucket shared with them (public, or restricted to them).
SHARED_ACTIONS = frozenset({Action.READ, Action.LIST, Action.LOOKUP, Action.WRITE, Action.DELETE})
# Subjects MinIO takes as they are for a user's access key: 3+ characters, none of its reserved
# '=' and ',', nothing SigV4's `Credential=<key>/<scope>` could misread (spaces, '/'): the
# forms of Keycloak (UUIDs) and EGI Check-in (`<hex>@egi.eu`) subjects.
_MINIO_USER = re.compile(r"[A-Za-z0-9._@-]{3,128}")


def check_subject(subject: str) -> None:
    """`BadRequestError` unless `subject` can identify a user on the store.

    `cluster_admin` is refused: it is the recorded owner of everything the admin made, so a
    user with that subject would own all of it.
    """
    if not subject:
        raise BadRequestError("a user's subject must not be empty")
    if len(subject) > SUBJECT_MAX_LENGTH:
        raise BadRequestError(f"a user's subject must be at most {SUBJECT_MAX_LENGTH} characters")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in subject):
        raise BadRequestError("a user's subject must not contain control characters")
    if subject == DEFAULT_OWNER:
        raise BadRequestError(f"the subject '{DEFAULT_OWNER}' is reserved for the cluster admin")


def _derive(admin_secret: str, purpose: str, subject: str) -> str:
    message = f"oscar/user/{purpose}/{subject}".encode()
    return hmac.new(admin_secret.encode(), message, hashlib.sha256).hexdigest()


def user_keys(admin_secret: str, subject: str) -> tuple[str, str]:
    """(access key, secret key) of a user on the embedded store: stable, and unguessable
    without the admin secret."""
    digest = _derive(admin_secret, "access-key", subject)
    access = USER_ACCESS_KEY_PREFIX + digest[: _ACCESS_KEY_LENGTH - len(USER_ACCESS_KEY_PREFIX)]
    return access, user_secret(admin_secret, subject)


def user_secret(admin_secret: str, subject: str) -> str:
    """A user's secret key (the same on both stores)."""
    return _derive(admin_secret, "secret-key", subject)[:_SECRET_KEY_LENGTH]


def minio_user_name(subject: str, admin_access_key: str) -> str:
    """The MinIO user (its access key) of a subject: the subject itself, as upstream, when MinIO
    takes it and it cannot be confused with the admin's or a job's key; otherwise the derived
    `ouser...` key (short subjects such as `42`, or ones with '=', ',', spaces or non-ASCII).

    Derived names depend only on the subject, never on the admin secret, so that a restricted
    bucket's users stay attached when the secret changes.
    """
    reserved = subject.startswith(RESERVED_PREFIXES)
    if _MINIO_USER.fullmatch(subject) and not reserved and subject != admin_access_key:
        return subject
    digest = hashlib.sha256(f"oscar/user/minio-name/{subject}".encode()).hexdigest()
    return USER_ACCESS_KEY_PREFIX + digest[: _ACCESS_KEY_LENGTH - len(USER_ACCESS_KEY_PREFIX)]


@dataclass(frozen=True)
class UserAccess:
    """What one user's key may do, given a bucket's recorded owner and visibility."""

    subject: str

    def allows(
        self, action: Action, owner: str, visibility: str, allowed_users: Collection[str]
    ) -> bool:
        """Whether the user may do `action` on a bucket with this owner and visibility."""
        if action in (Action.LIST_BUCKETS, Action.CREATE_BUCKET):
            return True  # the listing is filtered, and a new bucket is the user's
        if owner == self.subject:
            return True
        return self.shares(visibility, allowed_users) and action in SHARED_ACTIONS

    def shares(self, visibility: str, allowed_users: Collection[str]) -> bool:
        """Whether a bucket of someone else's with this visibility is shared with the user."""
        return visibility == "public" or (
            visibility == "restricted" and self.subject in allowed_users
        )

    def reaches(self, owner: str, visibility: str, allowed_users: Collection[str]) -> bool:
        """Whether ListBuckets shows the user this bucket."""
        return owner == self.subject or self.shares(visibility, allowed_users)
