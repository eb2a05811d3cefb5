"""The web UI: the files Vite builds from ``web/`` into ``server/static/``, served at ``/``.

``/`` answers ``index.html`` and ``/assets/...`` the hashed scripts and styles (cached for a
year: their names change when they do). The page reads everything through ``/api/v1`` with
the API key the user signs in with, so these routes need no key and hold nothing private.
Nothing here needs Node: a server whose UI was not built answers ``/`` with how to build it.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

# resolve(): under a strict editable install this module is a link into the checkout
STATIC = Path(__file__).resolve().parent / "static"

NOT_BUILT = """<!doctype html><meta charset="utf-8"><title>trackd</title>
<h1>The trackd web UI is not built</h1>
<p>This server has no <code>{where}</code>. Build it with <code>make web</code> in the trackd
checkout (it runs <code>npm ci &amp;&amp; npm run build</code> in <code>web/</code>; Node 20 or
later), then reload this page. The API is at <a href="/docs">/docs</a>.</p>
"""


def mount(app: FastAPI, static: Path = STATIC) -> None:
    """Serve the built UI from ``static`` at ``/`` (after the API routes, which win)."""
    index = static / "index.html"

    @app.get("/", include_in_schema=False)
    def page() -> Response:
        if not index.is_file():
            return HTMLResponse(NOT_BUILT.format(where=index), status_code=503)
        # the page names the current hashed assets, so it must never be cached
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    assets = static / "assets"
    app.mount(
        "/assets",
        _Assets(directory=assets, check_dir=False),
        name="web-assets",
    )


class _Assets(StaticFiles):
    """Hashed build outputs: immutable, so a browser may keep them."""

    async def check_config(self) -> None:
        # a server started before `make web` answers 404 here, not 500
        if self.directory is not None and Path(self.directory).is_dir():
            await super().check_config()

    async def get_response(self, path: str, scope: dict) -> Response:  # type: ignore[override]
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response
