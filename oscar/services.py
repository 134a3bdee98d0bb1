"""`ServiceManager`: create, update and delete a service across registry, storage and backends.

Each verb runs its steps in order — registry, then storage, then Knative (and, on delete, the
service's jobs) — and when a step fails it undoes the steps already done, then re-raises the
original error, so a failed request leaves the system as it was before it. An undo step that
fails itself is logged and does not replace the original error.

What the manager decides (the routes only parse, authenticate and call it):

- the stored form: `minio.default` is always the cluster's own store, never a client's copy;
- create: the token is always generated here (a client-supplied one is replaced);
- update: the token and owner of the stored definition are kept, and a secret sent with an
  empty value keeps its stored value (so a definition read back with blanked secrets can be
  sent again unchanged);
- the image: when `allowed_image_repositories` is set, a service's image must start with one
  of them (upstream tests "contains"; a prefix cannot be met by `evil.example/ghcr.io/...`);
- `isolation_level: USER`: `bucket_list` is always the server's (one bucket per allowed user
  and input bucket, `oscar.storage.isolation`), and a user owner joins `allowed_users`; the
  storage set-up then makes those buckets, each owned by its user;
- who may change a service is the caller's business: `update` and `delete` take an `authorize`
  callback, run on the stored record the change applies to, before anything is changed.

Methods block (registry, storage and Kubernetes calls): call them from a worker thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import partial

from oscar.auth.tokens import new_service_token
from oscar.errors import FieldError, InvalidServiceError
from oscar.executors.knative import KnativeBackend
from oscar.jobs.base import JobRecords
from oscar.jobs.dispatcher import Dispatcher
from oscar.models.service import Service
from oscar.registry.base import Registry
from oscar.storage.base import ServiceStorage
from oscar.storage.isolation import isolate

log = logging.getLogger("oscar.services")

#: The registry setting of the image prefixes services may use (upstream's key).
ALLOWED_IMAGE_REPOSITORIES = "allowed_image_repositories"

Authorize = Callable[[Service], None]
"""Raises (e.g. `ForbiddenError`) when the caller may not change the stored service given."""


class _Undo:
    """The compensating actions of the steps done so far, run in order when a later one fails.

    `add` puts an action first (the usual reverse order of the steps); `add_last` puts it
    after every action added so far, for undo steps that must see the others done first.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self._actions: list[tuple[str, Callable[[], object]]] = []

    def add(self, description: str, action: Callable[[], object]) -> None:
        """Undo `action` before the earlier steps' undos."""
        self._actions.insert(0, (description, action))

    def add_last(self, description: str, action: Callable[[], object]) -> None:
        """Undo `action` after the undos added so far."""
        self._actions.append((description, action))

    def run(self, error: BaseException) -> None:
        """Run every action; a failing one is logged and the rest still run."""
        log.warning("%s failed (%s); undoing the steps already done", self.what, error)
        for description, action in self._actions:
            try:
                action()
            except Exception:
                log.exception("%s: could not %s; left as it is", self.what, description)


def _stored_form(service: Service) -> Service:
    """A copy of `service` as the registry keeps it."""
    stored = service.model_copy(deep=True)
    # minio.default is always the cluster's own store; a copy sent by a client is not kept.
    stored.storage_providers.minio.pop("default", None)
    return stored


class ServiceManager:
    """The one place where a service's pieces are created, changed and removed together."""

    def __init__(
        self,
        registry: Registry,
        storage: ServiceStorage,
        dispatcher: Dispatcher,
        job_store: JobRecords,
        knative: KnativeBackend | None = None,
    ) -> None:
        self.registry = registry
        self.storage = storage
        self.dispatcher = dispatcher
        self.job_store = job_store
        self.knative = knative
        # One mutation at a time in this process: an undo must not race another request's
        # change of the same record, nor of a bucket two services share (notification rules
        # are rewritten from the whole registry). Service changes are rare admin requests.
        self._lock = threading.Lock()

    # --- the images services may use (`PUT /system/config`) -------------------------------
    def allowed_image_repositories(self) -> list[str]:
        """The image prefixes services may use; empty: any image."""
        return list(self.registry.read_setting(ALLOWED_IMAGE_REPOSITORIES) or [])

    def set_allowed_image_repositories(self, prefixes: list[str]) -> list[str]:
        """Replace the list (existing services are not checked again, as upstream)."""
        with self._lock:
            self.registry.write_setting(ALLOWED_IMAGE_REPOSITORIES, prefixes)
        log.info("allowed image repositories set", extra={"count": len(prefixes)})
        return prefixes

    def _check_image(self, service: Service) -> None:
        prefixes = self.allowed_image_repositories()
        if prefixes and not any(service.image.startswith(p) for p in prefixes):
            raise InvalidServiceError(
                [
                    FieldError(
                        "image",
                        f"{service.image!r} is not from an allowed repository "
                        f"({', '.join(prefixes)}; see GET /system/config)",
                    )
                ]
            )

    def create(self, service: Service) -> Service:
        """Register a new service (given token replaced, owner as given) and set it up.

        Raises `ServiceExistsError` when the name is taken, `InvalidServiceError` when a USER
        isolation bucket cannot be named (nothing is changed then), or the error of the first
        step that failed, after undoing the steps before it (`ConflictError` for a user's
        bucket that exists and belongs to someone else).
        """
        stored = _stored_form(service)
        stored.token = new_service_token()
        isolate(stored)
        name = stored.name
        with self._lock:
            self._check_image(stored)
            self.registry.create(stored)  # refused: nothing was done, nothing to undo
            undo = _Undo(f"creating service '{name}'")
            undo.add("delete its registry record", partial(self.registry.delete, name))
            try:
                # Read first so the undo removes only buckets this create made, never ones
                # that held data before. The teardown goes after the record is deleted: it
                # asks the registry which buckets other services use and which event rules
                # remain, and must no longer see this service.
                existed = self.storage.existing_buckets(stored)
                undo.add_last(
                    "remove the buckets it created",
                    partial(self.storage.teardown_service, stored, keep=existed),
                )
                self.storage.setup_service(stored)
                if self.knative is not None:
                    # Added before the call: a create that fails half-way may still leave a
                    # ksvc, and deleting an absent one is harmless.
                    undo.add("delete its Knative service", partial(self.knative.delete, name))
                    self.knative.apply(stored)
            except Exception as exc:
                undo.run(exc)
                raise
        log.info("service created", extra={"service": name, "owner": stored.owner})
        return stored

    def update(self, service: Service, *, authorize: Authorize | None = None) -> Service:
        """Replace a service's definition, keeping its token, owner and unchanged secrets.

        Raises `ServiceNotFoundError` for an unknown name, whatever `authorize` raises, or the
        error of the first step that failed, after restoring the previous definition.
        """
        name = service.name
        with self._lock:
            existing = self.registry.get(name)
            if authorize is not None:
                authorize(existing)
            self._check_image(service)
            stored = _stored_form(service)
            stored.token = existing.token
            stored.owner = existing.owner
            stored.environment.secrets = {
                key: value or existing.environment.secrets.get(key, "")
                for key, value in stored.environment.secrets.items()
            }
            isolate(stored)
            self.registry.update(stored)
            undo = _Undo(f"updating service '{name}'")
            undo.add("restore its previous definition", partial(self.registry.update, existing))
            try:
                existed = self.storage.existing_buckets(stored)
                # After the registry is restored (see `create`): drop the buckets the new
                # definition added, then put the previous definition's visibility and event
                # rules back.
                undo.add_last(
                    "remove the buckets the update created",
                    partial(self.storage.teardown_service, stored, keep=existed),
                )
                undo.add_last(
                    "set up storage for the previous definition",
                    partial(self.storage.setup_service, existing),
                )
                self.storage.setup_service(stored)
                if self.knative is not None:
                    undo.add(
                        "re-apply its previous Knative service",
                        partial(self.knative.apply, existing),
                    )
                    self.knative.apply(stored)
            except Exception as exc:
                undo.run(exc)
                raise
        log.info("service updated", extra={"service": name})
        return stored

    def delete(self, name: str, *, authorize: Authorize | None = None) -> None:
        """Remove a service: its record, then its buckets, its ksvc and its jobs.

        Raises `ServiceNotFoundError` for an unknown name, whatever `authorize` raises, or the
        registry's error, and then nothing else happens. Once the record is gone the rest is
        best effort: every step is tried, and the first failure is raised at the end (the
        others are logged) — but the service stays deleted. Putting the record back would
        revive a service whose buckets, ksvc or jobs may already be partly gone, and the
        caller asked for it to go; what is left over does no harm (a ksvc or bucket no record
        points to receives no events or invocations, and a later create of the same name
        replaces the ksvc and reuses the buckets), and the error names it for the operator.
        """
        with self._lock:
            existing = self.registry.get(name)
            if authorize is not None:
                authorize(existing)
            self.registry.delete(name)
            failures: list[Exception] = []

            def attempt(description: str, action: Callable[[], object]) -> None:
                try:
                    action()
                except Exception as exc:
                    log.exception("deleting service '%s': could not %s", name, description)
                    exc.add_note(f"service '{name}' was deleted, but oscar could not {description}")
                    failures.append(exc)

            attempt("remove its buckets", partial(self.storage.teardown_service, existing))
            if self.knative is not None:
                attempt("delete its Knative service", partial(self.knative.delete, name))
            # Its jobs go with it (running ones are stopped): their records and logs would
            # dangle otherwise.
            attempt("delete its jobs", partial(self._delete_jobs, name, failures))
        if failures:
            raise failures[0]
        log.info("service deleted", extra={"service": name})

    def _delete_jobs(self, name: str, failures: list[Exception]) -> None:
        """Delete every job of the service; one that cannot be deleted does not stop the rest."""
        for job in self.job_store.summaries(name):
            try:
                self.dispatcher.delete(job)
            except Exception as exc:
                log.exception("deleting service '%s': could not delete job %s", name, job.name)
                exc.add_note(f"service '{name}' was deleted, but its job {job.name} was not")
                failures.append(exc)
