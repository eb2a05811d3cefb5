"""The server's error body, ``{"error": {"code": ..., "message": ...}}``, both ways.

The server builds it with :func:`error_body`; the training process, the CLI and the daemon's
uploader read the message back with :func:`error_message`. Version 1.
"""

from __future__ import annotations

from typing import Any

ERROR_BODY_VERSION = 1


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    """The JSON document an error answer carries."""
    return {"error": {"code": code, "message": message}}


def error_message(doc: Any) -> str | None:
    """The message of a decoded error body, or None if ``doc`` is not one."""
    try:
        message = doc["error"]["message"]
    except (KeyError, TypeError, IndexError):
        return None
    return message if isinstance(message, str) else str(message)
