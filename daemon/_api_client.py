"""The daemon's HTTP client for one server: its API base, timeout and TLS/proxy settings."""

from __future__ import annotations

import httpx
from trackd._wire.settings import Settings


def api_client(base_url: str, settings: Settings) -> httpx.Client:
    """A kept-alive client for ``base_url``'s ``/api/v1``, as the settings ask (timeout,
    CA bundle, whether to trust proxy variables); the caller keeps one per base URL."""
    return httpx.Client(
        base_url=f"{base_url}/api/v1",
        timeout=httpx.Timeout(settings.http_timeout),
        **settings.http_options(),
    )
