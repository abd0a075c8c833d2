"""JSON errors as FHIR OperationOutcome bodies, from one place."""

from __future__ import annotations

from flask import Flask
from werkzeug.exceptions import HTTPException

from fhir_adapter import RequestError

from .store import StoreUnavailable

ISSUE_CODES = {
    400: "invalid",
    401: "login",
    404: "not-found",
    405: "not-supported",
    413: "too-long",
    503: "transient",
}


def outcome(message: str, status: int) -> tuple[dict, int]:
    issue = {
        "severity": "error",
        "code": ISSUE_CODES.get(status, "processing"),
        "diagnostics": message,
    }
    return {"resourceType": "OperationOutcome", "issue": [issue]}, status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(RequestError)
    def bad_request(error: RequestError):
        return outcome(error.message, error.status)

    @app.errorhandler(StoreUnavailable)
    def store_unavailable(error: StoreUnavailable):
        """Fail closed: a JWT whose jti cannot be checked is not accepted, nor is feedback."""
        return *outcome(str(error), 503), {"Retry-After": "1"}

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        return outcome(error.description or error.name, error.code or 500)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        app.logger.exception("unhandled error")  # the traceback, never the request body
        return outcome("internal error while evaluating the request", 500)
