"""Who may reach a bucket on MinIO, as MinIO users, groups and policies (`MinIOGrants`).

MinIO enforces the rule of `oscar.storage.users` through these, per bucket `<b>`:

- **OIDC users** are MinIO users named by their subject (`minio_user_name`), with a secret
  derived from the admin secret, so every replica hands out the same keys and none is stored.
  Every one of them is in the group `oscar-users` (upstream's `all_users_group`).
- **The owner** (bucket tag `owner`, when a user) is the one member of the group
  `oscar-<b>_owner`, whose policy of the same name allows `s3:*` on the bucket and its objects.
- **`restricted`**: the canned policy `oscar-<b>` (its name is what `/system/buckets` reads
  back as `restricted`) on the group `oscar-<b>`, whose members are the allowed users, as
  upstream does it.
- **`public`**: an anonymous bucket policy that reads and lists (as the embedded store), plus
  the policy `oscar-<b>_public` attached to the group `oscar-users`.
- **`private`**: neither of the last two.

The policies of `restricted` and `public` buckets allow the shared actions of the rule: look
up, list, read, write and delete objects, multipart uploads; never deleting the bucket nor
changing its policy. Bucket names cannot hold '_', so these names never collide with another
bucket's. Group memberships and a group's one policy change in a few milliseconds; attaching
a policy to `oscar-users`, which holds one per public bucket, goes through MinIO's encrypted
admin calls (a fraction of a second on the client), so it is done only when it changes.

Users named in `allowed_users` or as owners are made on MinIO when missing (as upstream), with
their derived secret, so a bucket shared with them reaches them from their first login on. An
existing MinIO user keeps its secret until `credentials` hands the subject its keys.

Methods raise the minio client's own errors; `MinIOStorage._translated` converts them.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from oscar.models.service import DEFAULT_OWNER
from oscar.storage.users import minio_user_name, user_secret

ALL_USERS_GROUP = "oscar-users"
OWNER_NAME_OF_ADMIN = "oscar"  # upstream's `owner_name` tag for the admin
_BUCKET_ACTIONS = ["s3:GetBucketLocation", "s3:ListBucket"]
_OBJECT_ACTIONS = [
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
]
# MinIO's answer to attaching an attached policy or detaching a detached one.
_NO_CHANGE = "XMinioAdminPolicyChangeAlreadyApplied"


def restricted_policy(bucket: str) -> str:
    """The canned policy that gives a restricted bucket's users access to it."""
    return f"oscar-{bucket}"


def owner_policy(bucket: str) -> str:
    """The policy that gives a bucket's owner everything on it."""
    return f"oscar-{bucket}_owner"


def public_policy(bucket: str) -> str:
    """The policy that gives every OSCAR user the shared actions on a public bucket."""
    return f"oscar-{bucket}_public"


def _document(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": statements}


def shared_document(bucket: str) -> dict[str, Any]:
    """The shared actions on `bucket` (restricted and public buckets)."""
    return _document(
        [
            {"Effect": "Allow", "Action": _BUCKET_ACTIONS, "Resource": [f"arn:aws:s3:::{bucket}"]},
            {
                "Effect": "Allow",
                "Action": _OBJECT_ACTIONS,
                "Resource": [f"arn:aws:s3:::{bucket}/*"],
            },
        ]
    )


def owner_document(bucket: str) -> dict[str, Any]:
    """Everything on `bucket` and its objects."""
    resources = [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
    return _document([{"Effect": "Allow", "Action": ["s3:*"], "Resource": resources}])


def anonymous_document(bucket: str) -> dict[str, Any]:
    """The bucket policy of a public bucket: anyone may look it up, list and read."""
    anyone = {"AWS": ["*"]}
    return _document(
        [
            {
                "Effect": "Allow",
                "Principal": anyone,
                "Action": _BUCKET_ACTIONS,
                "Resource": [f"arn:aws:s3:::{bucket}"],
            },
            {
                "Effect": "Allow",
                "Principal": anyone,
                "Action": ["s3:GetObject"],
                "Resource": [f"arn:aws:s3:::{bucket}/*"],
            },
        ]
    )


class MinIOGrants:
    """Users, owner and visibility policies on one MinIO (through its admin and S3 clients)."""

    def __init__(self, client: Any, admin: Any, admin_access_key: str, admin_secret: str) -> None:
        self._client = client
        self._admin = admin
        self._admin_access_key = admin_access_key
        self._admin_secret = admin_secret
        self._lock = threading.Lock()
        self._existing: set[str] = set()  # MinIO users known to exist, in the group
        self._keyed: set[str] = set()  # ... and to have their derived secret
        self._group_made = False

    # --- users -----------------------------------------------------------------------------

    def user_name(self, subject: str) -> str:
        """The MinIO user of an OIDC subject."""
        return minio_user_name(subject, self._admin_access_key)

    def credentials(self, subject: str) -> tuple[str, str]:
        """(access key, secret key) of the subject's MinIO user, made (or given its derived
        secret) the first time this process is asked; later calls compute only."""
        name, secret = self.user_name(subject), user_secret(self._admin_secret, subject)
        with self._lock:
            known = name in self._keyed
        if not known:
            self._admin.user_add(name, secret)  # keeps the user's policies and groups
            self._join_all_users(name)
            with self._lock:
                self._existing.add(name)
                self._keyed.add(name)
        return name, secret

    def ensure_user(self, subject: str) -> str:
        """The subject's MinIO user, made with its derived secret when missing; an existing
        user (made by an admin, or earlier) keeps its secret."""
        from minio.error import MinioAdminException

        name = self.user_name(subject)
        with self._lock:
            if name in self._existing:
                return name
        try:
            self._admin.user_info(name)
        except MinioAdminException as exc:
            if exc._code != "404":
                raise
            self._admin.user_add(name, user_secret(self._admin_secret, subject))
        self._join_all_users(name)
        with self._lock:
            self._existing.add(name)
        return name

    def _join_all_users(self, name: str) -> None:
        # minio-py types `members` as a string; MinIO takes a list of user names.
        self._admin.group_add(ALL_USERS_GROUP, [name])
        self._group_made = True

    def _make_all_users_group(self) -> None:
        """Make the group (empty) before a policy is attached to it, once per process."""
        if not self._group_made:
            self._admin.group_add(ALL_USERS_GROUP, [])
            self._group_made = True

    # --- groups and policies ---------------------------------------------------------------

    def _group(self, group: str) -> dict[str, Any] | None:
        """A group's members and policy; None when there is no such group."""
        from minio.error import MinioAdminException

        try:
            return dict(json.loads(self._admin.group_info(group)))
        except MinioAdminException as exc:
            if exc._code == "404":
                return None
            raise

    def _grant_group(self, name: str, document: dict[str, Any], members: list[str]) -> None:
        """Make the group `name` hold exactly `members`, with the policy `name` saying
        `document` as its one policy."""
        found = self._group(name)
        current = list((found or {}).get("members") or [])
        leaving = [user for user in current if user not in members]
        if leaving:
            self._admin.group_remove(name, leaving)
        if found is None or [user for user in members if user not in current]:
            # minio-py types `members` as a string; MinIO takes a list of user names.
            self._admin.group_add(name, members)
        self._admin.policy_add(name, policy=document)
        if (found or {}).get("policy") != name:
            self._admin.policy_set(name, group=name)

    def _revoke_group(self, name: str) -> None:
        """Remove the group `name` (its members first: MinIO keeps a group that has any) and
        the policy `name`."""
        found = self._group(name)
        if found is not None:
            if found.get("members"):
                self._admin.group_remove(name, list(found["members"]))
            self._admin.group_remove(name)
        self._remove_policy(name)

    def _remove_policy(self, policy: str) -> None:
        """Remove a policy, first detaching it from the users it is attached to directly (as
        restricted buckets were before they had a group); nothing when there is none."""
        from minio.error import MinioAdminException

        try:
            self._admin.policy_remove(policy)
        except MinioAdminException as exc:
            if exc._code == "404":
                return
            if "XMinioIAMPolicyInUse" not in str(exc):
                raise
            for user in self._users_attached(policy):
                self._admin.detach_policy([policy], user=user)
            self._admin.policy_remove(policy)

    def _users_attached(self, policy: str) -> list[str]:
        """The users a policy is attached to directly (an encrypted admin call: slow)."""
        entities = json.loads(self._admin.get_policy_entities([], [], [policy]))
        users: list[str] = []
        for mapping in entities.get("policyMappings") or []:
            if mapping.get("policy") == policy:
                users.extend(mapping.get("users") or [])
        return sorted(users)

    def _attach(self, policy: str, *, group: str) -> None:
        """Attach a policy to a group that may hold others (an encrypted admin call)."""
        from minio.error import MinioAdminException

        try:
            self._admin.attach_policy([policy], group=group)
        except MinioAdminException as exc:
            if _NO_CHANGE not in str(exc):
                raise

    def _detach(self, policy: str, *, group: str) -> None:
        """Detach a policy from a group (an encrypted admin call)."""
        from minio.error import MinioAdminException

        try:
            self._admin.detach_policy([policy], group=group)
        except MinioAdminException as exc:
            if _NO_CHANGE not in str(exc) and exc._code != "404":
                raise

    def _policy_exists(self, policy: str) -> bool:
        from minio.error import MinioAdminException

        try:
            self._admin.policy_info(policy)
        except MinioAdminException as exc:
            if exc._code == "404":
                return False
            raise
        return True

    def _all_users_policies(self) -> list[str]:
        """The policies attached to the group `oscar-users` (none while it does not exist)."""
        found = self._group(ALL_USERS_GROUP)
        return [p for p in str((found or {}).get("policy") or "").split(",") if p]

    def restricted_users(self, bucket: str) -> list[str] | None:
        """The MinIO users of a bucket's `restricted` policy; None when it has none."""
        name = restricted_policy(bucket)
        found = self._group(name)
        if found is not None:
            return sorted(found.get("members") or [])
        if not self._policy_exists(name):
            return None
        return self._users_attached(name)  # a bucket made restricted before groups

    # --- buckets ---------------------------------------------------------------------------

    def tag_owner(self, bucket: str, owner: str) -> None:
        """Record the owner in the bucket tags `owner` and `owner_name` (upstream's), keeping
        the other tags."""
        from minio.commonconfig import Tags

        current = self._client.get_bucket_tags(bucket) or {}
        name = OWNER_NAME_OF_ADMIN if owner == DEFAULT_OWNER else owner
        if current.get("owner") == owner and current.get("owner_name") == name:
            return
        tags = Tags.new_bucket_tags()
        for key, value in current.items():
            tags[key] = value
        tags["owner"], tags["owner_name"] = owner, name
        self._client.set_bucket_tags(bucket, tags)

    def set_owner(self, bucket: str, owner: str) -> None:
        """Give a user owner everything on the bucket, and nobody else (a previous owner loses
        it); an admin-owned bucket has no owner group (the admin keys reach everything)."""
        if owner and owner != DEFAULT_OWNER:
            user = self.ensure_user(owner)
            self._grant_group(owner_policy(bucket), owner_document(bucket), [user])
        else:
            self._revoke_group(owner_policy(bucket))

    def set_visibility(self, bucket: str, visibility: str, allowed_users: list[str]) -> None:
        """Apply `visibility`, removing the grants of the other two; `allowed_users` are
        subjects (made on MinIO when missing)."""
        if visibility == "restricted":
            users = [self.ensure_user(subject) for subject in dict.fromkeys(allowed_users)]
            self._grant_group(restricted_policy(bucket), shared_document(bucket), users)
        else:
            self._revoke_group(restricted_policy(bucket))
        public = public_policy(bucket)
        attached = public in self._all_users_policies()
        if visibility == "public":
            self._client.set_bucket_policy(bucket, json.dumps(anonymous_document(bucket)))
            self._admin.policy_add(public, policy=shared_document(bucket))
            if not attached:
                self._make_all_users_group()
                self._attach(public, group=ALL_USERS_GROUP)
        else:
            self._client.delete_bucket_policy(bucket)
            if attached:
                self._detach(public, group=ALL_USERS_GROUP)
            self._remove_policy(public)

    def drop(self, bucket: str) -> None:
        """Remove every grant of a deleted bucket, so that a new bucket of the same name
        starts with none."""
        self._revoke_group(owner_policy(bucket))
        self._revoke_group(restricted_policy(bucket))
        public = public_policy(bucket)
        if public in self._all_users_policies():
            self._detach(public, group=ALL_USERS_GROUP)
        self._remove_policy(public)
