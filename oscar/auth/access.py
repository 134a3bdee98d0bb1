"""Who may do what: the authorisation rules of services, jobs, buckets and bridges, in one place.

Routes receive a `Principal` and call these; nothing else decides. The rules (docs/auth.md has
them as a table) follow upstream OSCAR where it has one:

- Admins (HTTP Basic, or an OIDC subject in `OSCAR_USERS_ADMIN`) may do everything.
- A service is *visible* to its owner, to everyone when `public`, and to the users named in
  `allowed_users` when `restricted` (upstream `hasPermission`). Whoever sees a service may
  read it, list and invoke it (`/job`, `/run`), and see the jobs they made.
- Only the owner updates or deletes a service, stops or restarts it, reads its metrics and
  manages its bridges; only the owner reads its token, secrets-free definition aside.
- Jobs: the owner of a service sees and deletes all its jobs; another user who may invoke it
  sees and deletes only the jobs they made (upstream: "OIDC users see only their own jobs").
- Buckets: visible (read, list objects, presign a download) as services are; writable (presign
  an upload or a delete) by the same people; only the owner changes visibility or deletes.
- A service token reaches `/job`, `/run` and the forward-auth check of its own service only.
"""

from __future__ import annotations

from oscar.auth.principal import Principal
from oscar.errors import ForbiddenError
from oscar.models.job import Job
from oscar.models.service import Service
from oscar.storage.buckets import BucketInfo


def _shared_with(principal: Principal, owner: str, visibility: str, allowed: list[str]) -> bool:
    if principal.is_admin:
        return True
    if principal.kind != "user":
        return False
    if owner == principal.subject or visibility == "public":
        return True
    return visibility == "restricted" and principal.subject in allowed


def owns(principal: Principal, owner: str) -> bool:
    """Whether `principal` is an admin or the owner named `owner`."""
    return principal.is_admin or (principal.kind == "user" and owner == principal.subject)


def may_see_service(principal: Principal, service: Service) -> bool:
    """Whether `principal` may list, read and invoke `service`."""
    if principal.kind == "service":
        return principal.name == service.name
    return _shared_with(principal, service.owner, service.visibility, service.allowed_users)


def require_service_visible(principal: Principal, service: Service) -> None:
    """403 unless `principal` may see `service`."""
    if not may_see_service(principal, service):
        raise ForbiddenError(f"you may not access service '{service.name}'")


def require_service_owner(principal: Principal, service: Service) -> None:
    """403 unless `principal` is an admin or owns `service` (updates, deletes, management)."""
    if not owns(principal, service.owner):
        raise ForbiddenError(f"you do not own service '{service.name}'")


def may_see_all_jobs(principal: Principal, service: Service) -> bool:
    """Whether `principal` sees every job of `service` (else only the jobs they made)."""
    return owns(principal, service.owner)


def may_see_job(principal: Principal, service: Service, job: Job) -> bool:
    """Whether `principal` may read or delete `job` of `service`."""
    if may_see_all_jobs(principal, service):
        return True
    return principal.kind == "user" and bool(job.owner) and job.owner == principal.subject


def may_see_bucket(principal: Principal, bucket: BucketInfo) -> bool:
    """Whether `principal` may read and list `bucket` (and write and delete its objects)."""
    return _shared_with(principal, bucket.owner, bucket.visibility, bucket.allowed_users)


def require_bucket_visible(principal: Principal, bucket: BucketInfo) -> None:
    """403 unless `principal` may reach `bucket`."""
    if not may_see_bucket(principal, bucket):
        raise ForbiddenError(f"you may not access bucket '{bucket.name}'")


def require_bucket_owner(principal: Principal, bucket: BucketInfo) -> None:
    """403 unless `principal` is an admin or owns `bucket`."""
    if not owns(principal, bucket.owner):
        raise ForbiddenError(f"you do not own bucket '{bucket.name}'")


def require_vo(principal: Principal, service: Service, accepted: list[str]) -> None:
    """A user may only put a service in a group (`vo`) they belong to; with no `vo`, the first
    accepted group (`OSCAR_OIDC_GROUPS`) they belong to is taken, as upstream does."""
    if principal.kind != "user":
        return
    if service.vo:
        if service.vo not in principal.groups:
            raise ForbiddenError(f"you are not a member of the group (vo) '{service.vo}'")
        return
    service.vo = next((group for group in accepted if group in principal.groups), "")
