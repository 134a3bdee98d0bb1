"""The one place where control-plane errors become HTTP responses."""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from oscar.errors import (
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    BadRequestError,
    ConflictError,
    ForbiddenError,
    InvalidServiceError,
    NotFoundError,
    NotSupportedError,
    OscarError,
    ServiceExistsError,
    ServiceNotFoundError,
    TooManyRequestsError,
    UnauthorizedError,
)
from oscar.models.validation import format_loc

log = logging.getLogger("oscar.api")

# Most specific first: the first matching type decides.
_STATUS: dict[type[OscarError], int] = {
    InvalidServiceError: status.HTTP_400_BAD_REQUEST,
    BadRequestError: status.HTTP_400_BAD_REQUEST,
    UnauthorizedError: status.HTTP_401_UNAUTHORIZED,
    ForbiddenError: status.HTTP_403_FORBIDDEN,
    ServiceNotFoundError: status.HTTP_404_NOT_FOUND,
    ServiceExistsError: status.HTTP_409_CONFLICT,
    NotFoundError: status.HTTP_404_NOT_FOUND,
    ConflictError: status.HTTP_409_CONFLICT,
    TooManyRequestsError: status.HTTP_429_TOO_MANY_REQUESTS,
    NotSupportedError: status.HTTP_501_NOT_IMPLEMENTED,
    BackendUnavailableError: status.HTTP_503_SERVICE_UNAVAILABLE,
    BackendTimeoutError: status.HTTP_504_GATEWAY_TIMEOUT,
    BackendError: status.HTTP_502_BAD_GATEWAY,
}


def _oscar_error(_: Request, exc: Exception) -> JSONResponse:
    code = next(
        (c for kind, c in _STATUS.items() if isinstance(exc, kind)),
        status.HTTP_500_INTERNAL_SERVER_ERROR,
    )
    body: dict[str, object] = {"detail": str(exc)}
    if isinstance(exc, InvalidServiceError):
        body["detail"] = f"{exc.what} is not valid: {exc}"
        body["errors"] = [{"field": e.field, "message": e.message} for e in exc.errors]
    headers = {}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    if isinstance(exc, UnauthorizedError):
        headers["WWW-Authenticate"] = 'Bearer realm="oscar", error="invalid_token"'
    if code >= 500:
        log.warning("%s answered %d: %s", type(exc).__name__, code, exc)
    return JSONResponse(body, status_code=code, headers=headers)


def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # A bug of ours: the traceback goes to the server log, never to the caller.
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal error (see the server log)"}, status_code=500)


def _request_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": format_loc(err["loc"]), "message": err["msg"]} for err in exc.errors()]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return JSONResponse({"detail": detail, "errors": errors}, status_code=400)


def install_error_handlers(app: FastAPI) -> None:
    """Map typed errors (and FastAPI's own request validation) to status codes and JSON bodies."""
    app.add_exception_handler(OscarError, _oscar_error)
    # Upstream answers malformed requests with 400, not FastAPI's 422.
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(Exception, _unexpected_error)
