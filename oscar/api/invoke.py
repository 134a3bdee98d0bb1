"""Invocation routes: `POST /job/{name}` (asynchronous) and `POST /run/{name}` (synchronous)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import PlainTextResponse

from oscar.api.deps import ServicePrincipal, State

log = logging.getLogger("oscar.invoke")
router = APIRouter(tags=["invocation"])


@router.post(
    "/job/{name}",
    status_code=status.HTTP_201_CREATED,
    response_class=Response,
    summary="Run the service asynchronously on the request body (the event)",
    responses={401: {"description": "Bad token"}, 404: {"description": "Unknown service"}},
)
async def create_job(name: str, request: Request, state: State, _: ServicePrincipal) -> Response:
    """Record a job for the body (a storage event or any data) and start it; 201 once durable."""
    body = await request.body()
    job = state.dispatcher.submit(name, body.decode("utf-8", errors="replace"))
    headers = {"X-Oscar-Job-Name": job.name} if job else {}
    return Response(status_code=status.HTTP_201_CREATED, headers=headers)


@router.post(
    "/run/{name}",
    response_class=PlainTextResponse,
    summary="Run the service synchronously and return its output",
    responses={401: {"description": "Bad token"}, 404: {"description": "Unknown service"}},
)
async def run_service(name: str, request: Request, state: State, _: ServicePrincipal) -> Response:
    """Run the supervisor on the body as an UNKNOWN event and return its response.

    As upstream: a non-JSON body is base64-decoded into the input file; with one output file the
    answer is that file in base64, with several a base64 zip, with none the script's output.
    """
    service = state.registry.get(name)
    body = await request.body()
    if state.knative is not None:
        answer = await state.knative.call(name, body, state.settings.sync_timeout)
        return Response(
            answer.content,
            status_code=answer.status_code,
            media_type=answer.headers.get("content-type", "text/plain"),
        )
    code, output, log_text = await state.executor.run_sync(
        service, body, state.settings.sync_timeout
    )
    if code != 0:
        tail = "\n".join(log_text.splitlines()[-20:])
        log.info("sync run failed", extra={"service": name, "exit_code": code})
        return PlainTextResponse(
            f"the service failed (exit code {code}):\n{tail}\n", status_code=502
        )
    return Response(output, media_type="text/plain; charset=utf-8")
