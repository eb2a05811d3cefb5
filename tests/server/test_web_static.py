"""The server serves the built web UI at / without a key, and says how to build it when the
checkout has not built it; the API routes are unchanged beside it."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from fastapi import FastAPI
from trackd.server import _web

from tests._support.server import running_server


def test_the_built_ui_is_served_at_the_root(tmp_path: Path) -> None:
    assert (_web.STATIC / "index.html").is_file(), "run `make web` (make install does)"
    with running_server(tmp_path / "server") as server:
        page = httpx.get(server.url + "/", trust_env=False)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["cache-control"] == "no-cache"
        script = re.search(r'src="(/assets/[^"]+\.js)"', page.text)
        assert script, page.text
        asset = httpx.get(server.url + script.group(1), trust_env=False)
        assert asset.status_code == 200
        assert "javascript" in asset.headers["content-type"]
        assert "immutable" in asset.headers["cache-control"]
        missing = httpx.get(server.url + "/assets/nope.js", trust_env=False)
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
        api = httpx.get(server.url + "/api/v1/viewer", trust_env=False)
        assert api.status_code == 401 and api.json()["error"]["code"] == "unauthorized"
        assert "/" not in httpx.get(server.url + "/openapi.json", trust_env=False).json()["paths"]


def test_an_unbuilt_ui_answers_how_to_build_it(tmp_path: Path) -> None:
    app = FastAPI()
    _web.mount(app, tmp_path / "static")  # nothing built there

    async def ask() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ui") as client:
            return await client.get("/"), await client.get("/assets/index.js")

    with ThreadPoolExecutor(1) as pool:  # its own event loop, whatever this thread runs
        page, asset = pool.submit(asyncio.run, ask()).result()
    assert page.status_code == 503
    assert "make web" in page.text and "npm ci" in page.text
    assert asset.status_code == 404  # not a 500
