"""The training process's (and the CLI's) few synchronous calls to the server.

Used by ``init`` (authorize the entity, look up a run to resume), ``login``, ``sync`` and the
read client ``trackd.Api``; never by ``log()``. Read calls ask for msgpack, so NaN, inf and
64-bit ints come back exactly. httpx errors become :class:`~trackd.errors.CommError` here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import msgpack

from ._wire import error_body
from ._wire.settings import load
from .errors import AuthError, CommError, UsageError

MSGPACK = "application/msgpack"


class ServerClient:
    """A small authenticated client of the trackd server's ``/api/v1``."""

    def __init__(self, base_url: str, api_key: str | None, timeout: float = 30.0) -> None:
        if not api_key:
            raise UsageError(
                "api_key not configured; call trackd.login(key=...), run `trackd login`, "
                "or set TRACKD_API_KEY"
            )
        self.base_url = base_url
        self._client = httpx.Client(
            base_url=f"{base_url}/api/v1",
            headers={"Authorization": f"Bearer {api_key}", "Accept": MSGPACK},
            timeout=timeout,
            **load().http_options(),
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ServerClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._call("GET", path, params=params)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._call("POST", path, json=body)

    def download(self, path: str, dest: Path) -> None:
        """Stream the body of ``GET path`` (``/api/v1/...`` or relative to it) into ``dest``,
        through a temporary file renamed into place."""
        prefix = "/api/v1"
        path = path[len(prefix) :] if path.startswith(prefix + "/") else path
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part")
        try:
            with self._client.stream("GET", path) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error(response)
                with open(tmp, "wb") as out:
                    for chunk in response.iter_bytes(1 << 20):
                        out.write(chunk)
            os.replace(tmp, dest)
        except httpx.HTTPError as exc:
            raise CommError(f"downloading {path} from {self.base_url} failed ({exc})") from exc
        finally:
            tmp.unlink(missing_ok=True)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CommError(
                f"could not reach the trackd server at {self.base_url} ({exc}); "
                "is it running? (`trackd server`)"
            ) from exc
        if response.status_code >= 400:
            raise _error(response)
        return decode_body(response)


def decode_body(response: httpx.Response) -> Any:
    if response.headers.get("content-type", "").startswith(MSGPACK):
        return msgpack.unpackb(response.content, raw=False, strict_map_key=False)
    return response.json() if response.content else None


def error_message(response: httpx.Response) -> str:
    """The message of the server's error body, or the start of whatever it sent."""
    try:
        message = error_body.error_message(decode_body(response))
    except Exception:  # noqa: BLE001 - any unexpected body: fall back to the text
        message = None
    return message or response.text[:500] or response.reason_phrase


def _error(response: httpx.Response) -> CommError:
    message = error_message(response)
    if response.status_code in (401, 403):
        return AuthError(message, response.status_code)
    return CommError(f"{message} (HTTP {response.status_code})", response.status_code)
