"""Fixtures for the browser tests: Debian's Chromium driven by playwright, and a real
server (a subprocess on a loopback port) holding runs logged for real through the daemon.

The server and its data are made once per module (logging through the daemon takes
seconds); each test gets a fresh browser context, so nothing (a signed-in key) leaks between
tests. The tests skip, saying why, only where Chromium is not installed; ``.ci/run``
installs it, so CI runs them. Screenshots of each page go to ``<tmp>/screens/``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests._support.server import ServerProcess, running_server

from ._logging import finish_logging, log_runs

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STATIC = Path(__file__).resolve().parents[2] / "server" / "static" / "index.html"


@dataclass
class Site:
    """The server the browser talks to, its admin key, and a second user's key."""

    server: ServerProcess
    admin_key: str
    other_key: str
    workdir: Path

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if not STATIC.is_file():
        pytest.fail(f"the web UI is not built ({STATIC} is missing); run `make web`")
    workdir = tmp_path_factory.mktemp("web")
    with running_server(workdir / "server") as server:
        with server.client() as admin:
            made = admin.post("/admin/users", json={"name": "bob"})
            assert made.status_code == 201, made.text
            other_key = made.json()["api_key"]
        for key, kind in ((server.admin_key, "project"), (other_key, "secret")):
            finish_logging(log_runs(server, key, workdir, kind))
        with server.client() as admin:
            put = admin.put(
                "/runs/admin/vision/alpha/files/notes/readme.txt", content=b"hello from alpha\n"
            )
            assert put.status_code in (200, 201), put.text
        yield Site(server, server.admin_key, other_key, workdir)


# package scope: playwright's sync API runs an event loop in this thread until it stops, which
# later tests (asyncio.run, ast.parse) must not find still running
@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Chromium is not installed at {CHROMIUM}; apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})  # type: ignore[attr-defined]
    context.set_default_timeout(15_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, f"the page raised: {errors}"


def screenshot(page: object, name: str) -> Path:
    """Save what the page shows (to look at), under the test session's temp dir."""
    folder = Path(tempfile.gettempdir()) / "trackd-web-screens"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path


def api(site: Site, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=site.url + "/api/v1", headers={"Authorization": f"Bearer {key}"}, trust_env=False
    )
