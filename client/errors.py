"""The exceptions trackd raises.

::

    Error                 base of everything trackd raises on purpose
    ├── UsageError        the API was called in a way it does not support
    │   └── ConfigError   a config change that is not allowed, or a bad config source
    ├── CommError         the daemon or the server could not be reached or said no
    │   └── AuthError     the server refused the API key or the entity
    └── RunLogError       a run log on disk is missing or not readable

Bad values passed to ``log()`` raise the built-in ``TypeError``/``ValueError`` (as numbers
and dicts do), with a message that names the key, the value's type and what to log instead.
"""

from __future__ import annotations


class Error(Exception):
    """Base class of every error trackd raises on purpose."""


class UsageError(Error):
    """The API was used in a way it does not support; the message says how to fix it."""


class ConfigError(UsageError):
    """A config change that is not allowed, or a config source that cannot be read."""


class CommError(Error):
    """The daemon or the server could not be reached, or refused a request."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthError(CommError):
    """The server refused the API key, or the key may not use that entity."""


class RunLogError(Error):
    """A run log on disk is missing or is not a trackd run log."""


__all__ = ["AuthError", "CommError", "ConfigError", "Error", "RunLogError", "UsageError"]
