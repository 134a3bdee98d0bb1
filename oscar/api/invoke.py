"""Invocation routes: `POST /job/{name}` (asynchronous) and `POST /run/{name}` (synchronous)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import TypeVar

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import PlainTextResponse

from oscar.api.deps import ServicePrincipal, State
from oscar.api.state import AppState
from oscar.errors import BadRequestError, NotSupportedError, TooManyRequestsError
from oscar.events.scope import check_event_scope
from oscar.executors.base import SyncResult
from oscar.models.job import Job
from oscar.models.service import Service

log = logging.getLogger("oscar.invoke")
router = APIRouter(tags=["invocation"])
T = TypeVar("T")
# How often a synchronous run checks whether its client is still there.
DISCONNECT_CHECK_SECONDS = 0.25
# Retry-After of a `/job` call refused by the per-service quota.
QUOTA_RETRY_AFTER = 30.0
# Lines of the script's output a failed `/run` answer quotes.
FAILURE_TAIL_LINES = 10


@router.post(
    "/job/{name}",
    status_code=status.HTTP_201_CREATED,
    response_class=Response,
    summary="Run the service asynchronously on the request body (the event)",
    responses={
        400: {"description": "Empty body"},
        401: {"description": "Bad token"},
        403: {"description": "The event names an object outside the service's inputs"},
        404: {"description": "Unknown service"},
    },
)
async def create_job(
    name: str, request: Request, state: State, principal: ServicePrincipal
) -> Response:
    """Record a job for the body (a storage event or any data) and start it; 201 once durable.
    A job an OIDC user makes is theirs: they see it in the service's job list."""
    body = await request.body()
    owner = principal.subject if principal.kind == "user" else ""
    job = await asyncio.to_thread(_submit, state, request.state.service, body, owner)
    headers = {"X-Oscar-Job-Name": job.name} if job else {}
    return Response(status_code=status.HTTP_201_CREATED, headers=headers)


def check_event(service: Service, body: bytes) -> None:
    """400 for an empty body (the supervisor would have no event), 403 for an event naming
    objects outside the service's inputs. Blocks: parses the whole body."""
    if not body.strip():
        raise BadRequestError("the request body is empty: send the event (or the input data)")
    check_event_scope(service, body)


def _submit(state: AppState, service: Service, body: bytes, owner: str) -> Job | None:
    # Decoding a body of many MiB takes a while too: all of it happens off the event loop.
    check_event(service, body)
    _check_quota(state, service.name)
    event = body.decode("utf-8", errors="replace")
    return state.dispatcher.submit(service.name, event, owner=owner)


def _check_quota(state: AppState, name: str) -> None:
    """429 when the service already has `OSCAR_MAX_JOBS_PER_SERVICE` jobs not yet ended.

    Only waiting and running jobs count: they are the backlog a flood of calls builds, and they
    end on their own, so a retry later can succeed (ended jobs are kept until deleted). Two
    calls at the same moment may both pass the check: the bound can be exceeded by the number
    of concurrent calls, never more.
    """
    limit = state.settings.max_jobs_per_service
    if limit and state.job_store.count_active(name) >= limit:
        raise TooManyRequestsError(
            f"service '{name}' already has {limit} jobs waiting or running "
            "(OSCAR_MAX_JOBS_PER_SERVICE); retry once some have ended",
            retry_after=QUOTA_RETRY_AFTER,
        )


def failure_message(exit_code: int, log_text: str) -> str:
    """A failed `/run`'s answer: the exit code and the last lines of the script's own output.

    The supervisor's log lines (`<time> - supervisor - LEVEL - message`) carry the script's
    output as INFO messages between "Running the user script" and the script's end; everything
    else (the supervisor's own messages, tracebacks, host paths) stays in the server's log.
    """
    output: list[str] = []
    inside = False
    for line in log_text.splitlines():
        parts = line.split(" - ", 3)
        if len(parts) != 4 or parts[1] != "supervisor":
            continue  # a traceback line, the control plane's header, ...
        level, message = parts[2], parts[3]
        if message.startswith("Running the user script"):
            inside, output = True, []
        elif inside and level != "INFO":
            inside = False  # the supervisor's verdict on the script ends its output
        elif inside and (
            message.startswith("The script finished successfully") or message == "Job finished"
        ):
            inside = False
        elif inside:
            output.append(message)
    text = f"the service failed (exit code {exit_code})"
    if output:
        text += ":\n" + "\n".join(output[-FAILURE_TAIL_LINES:])
    return text + "\n"


class _ClientGoneError(Exception):
    """The client of a synchronous call disconnected before the answer."""


async def _while_connected(request: Request, work: Awaitable[T]) -> T:
    """Await `work`, cancelling it (and so stopping the run) if the client disconnects."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=DISCONNECT_CHECK_SECONDS)
            if done:
                return task.result()
            if await request.is_disconnected():
                raise _ClientGoneError
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


@router.post(
    "/run/{name}",
    response_class=PlainTextResponse,
    summary="Run the service synchronously and return its output",
    responses={
        400: {"description": "Empty body"},
        401: {"description": "Bad token"},
        403: {"description": "The event names an object outside the service's inputs"},
        404: {"description": "Unknown service"},
        429: {"description": "Every slot of the backend is busy (see Retry-After)"},
        501: {"description": "No backend here answers synchronously"},
    },
)
async def run_service(name: str, request: Request, state: State, _: ServicePrincipal) -> Response:
    """Run the supervisor on the body as an UNKNOWN event and return its response.

    As upstream: a non-JSON body is base64-decoded into the input file; with one output file the
    answer is that file in base64, with several a base64 zip, with none the script's output.
    At most the backend's concurrency runs at once (jobs included); a call waits
    `OSCAR_SYNC_QUEUE_WAIT` seconds for a slot, then gets 429. A client that disconnects
    cancels its run.
    """
    runner = state.sync_runner
    if runner is None:
        raise NotSupportedError("no backend of this cluster runs services synchronously")
    service: Service = request.state.service
    body = await request.body()
    await asyncio.to_thread(check_event, service, body)
    settings = state.settings
    async with state.dispatcher.sync_slot(runner.backend, settings.sync_queue_wait):
        try:
            with state.sync_activity.running(name):
                result: SyncResult = await _while_connected(
                    request, runner.run_sync(service, body, settings.sync_timeout)
                )
        except _ClientGoneError:
            log.info("sync run cancelled: the client disconnected", extra={"service": name})
            return Response(status_code=499)
    state.sync_activity.finished(name, result.exit_code, result.log)
    if result.exit_code != 0:
        log.info("sync run failed", extra={"service": name, "exit_code": result.exit_code})
        return PlainTextResponse(failure_message(result.exit_code, result.log), status_code=502)
    return Response(result.output, media_type="text/plain; charset=utf-8")
