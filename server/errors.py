"""The errors the trackd server answers with.

Each carries the HTTP status and a short machine-readable code; the app turns any of them
into ``{"error": {"code": ..., "message": ...}}`` with that status::

    trackd.errors.Error
    └── ServerError            base of every error the server raises on purpose (500)
        ├── BadRequest         400  a malformed query, JSON body or name
        ├── Unauthorized       401  no API key, or a key the server does not know
        ├── Forbidden          403  the key may not use that entity, or is not an admin
        ├── NotFound           404  no such run, file, user or key
        ├── RequestTimeout     408  the request body stopped arriving
        ├── Conflict           409  the name is taken, or a file path clashes with a folder
        ├── PayloadTooLarge    413  the body is over the limit
        ├── InvalidRecord      422  an ingest batch holds a record the server cannot apply
        └── StartupError       (CLI) the server cannot start with these settings

Foreign exceptions (SQLAlchemy, msgpack, OS errors) are converted where they are caught,
with ``raise ... from exc``.
"""

from __future__ import annotations

from trackd._wire.error_body import error_body
from trackd.errors import Error


class ServerError(Error):
    """Base of every error the trackd server raises on purpose."""

    status = 500
    code = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, dict[str, str]]:
        """The JSON error body the API answers with."""
        return error_body(self.code, self.message)


class BadRequest(ServerError):
    status = 400
    code = "bad_request"


class Unauthorized(ServerError):
    status = 401
    code = "unauthorized"


class Forbidden(ServerError):
    status = 403
    code = "forbidden"


class NotFound(ServerError):
    status = 404
    code = "not_found"


class RequestTimeout(ServerError):
    status = 408
    code = "request_timeout"


class Conflict(ServerError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ServerError):
    status = 413
    code = "payload_too_large"


class InvalidRecord(ServerError):
    status = 422
    code = "invalid_record"


class StartupError(ServerError):
    """The server (or an admin command) cannot start with the given settings."""

    code = "startup"


__all__ = [
    "BadRequest",
    "Conflict",
    "Forbidden",
    "InvalidRecord",
    "NotFound",
    "PayloadTooLarge",
    "RequestTimeout",
    "ServerError",
    "StartupError",
    "Unauthorized",
]
