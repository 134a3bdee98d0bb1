"""The one place where control-plane errors become HTTP responses."""

from __future__ import annotations

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from oscar.errors import (
    BadRequestError,
    ForbiddenError,
    InvalidServiceError,
    OscarError,
    ServiceExistsError,
    ServiceNotFoundError,
)
from oscar.models.validation import format_loc

_STATUS: dict[type[OscarError], int] = {
    InvalidServiceError: status.HTTP_400_BAD_REQUEST,
    BadRequestError: status.HTTP_400_BAD_REQUEST,
    ForbiddenError: status.HTTP_403_FORBIDDEN,
    ServiceNotFoundError: status.HTTP_404_NOT_FOUND,
    ServiceExistsError: status.HTTP_409_CONFLICT,
}


def _oscar_error(_: Request, exc: Exception) -> JSONResponse:
    code = next(
        (c for kind, c in _STATUS.items() if isinstance(exc, kind)),
        status.HTTP_500_INTERNAL_SERVER_ERROR,
    )
    body: dict[str, object] = {"detail": str(exc)}
    if isinstance(exc, InvalidServiceError):
        body["detail"] = "The service specification is not valid: " + str(exc)
        body["errors"] = [{"field": e.field, "message": e.message} for e in exc.errors]
    return JSONResponse(body, status_code=code)


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
