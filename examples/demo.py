"""``make demo``: a local server, one example training run uploaded to it, and where to look.

Starts ``trackd server`` (embedded SQLite under ``.trackd-demo/``) in the background unless a
demo server is already running, logs in to it, runs ``examples/quickstart.py`` online, then
prints the run as the server holds it and the URLs to look at. The server keeps running
(the line says how to stop it); the last lines are the web UI's link and the key to sign in
with.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".trackd-demo"


def _free_port(preferred: int = 8080) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def start_server() -> tuple[str, str]:
    """The demo server's URL and admin key, starting the server if it is not running."""
    state_file = DEMO / "server.json"
    if state_file.exists():
        state = json.loads(state_file.read_text())
        if _healthy(state["url"]):
            return state["url"], state["key"]
    DEMO.mkdir(exist_ok=True)
    key = (DEMO / "admin.key").read_text().strip() if (DEMO / "admin.key").exists() else ""
    if not key:
        key = "trk_" + secrets.token_urlsafe(30)[:40]
        (DEMO / "admin.key").write_text(key)
        os.chmod(DEMO / "admin.key", 0o600)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, TRACKD_ADMIN_KEY=key)
    log = open(DEMO / "server.log", "ab")  # noqa: SIM115 - handed to the server process
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trackd.server",
            "--port",
            str(port),
            "--data-dir",
            str(DEMO / "data"),
        ],
        stdout=log,
        stderr=log,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not _healthy(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"the demo server did not start; see {DEMO / 'server.log'}")
        time.sleep(0.2)
    state_file.write_text(json.dumps({"url": url, "key": key, "pid": proc.pid}))
    return url, key


def main() -> None:
    url, key = start_server()
    print(f"trackd demo: server at {url} (SQLite in {DEMO / 'data'})")
    env = dict(
        os.environ,
        TRACKD_BASE_URL=url,
        TRACKD_API_KEY=key,
        TRACKD_DIR=str(DEMO / "runs"),
        TRACKD_CONFIG_DIR=str(DEMO / "config"),
    )
    subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")], env=env, check=True)
    headers = {"Authorization": f"Bearer {key}"}
    runs = httpx.get(
        f"{url}/api/v1/entities/admin/projects/quickstart/runs",
        headers=headers,
        trust_env=False,
        timeout=10,
    ).json()["runs"]
    latest = max(runs, key=lambda r: r["created_at"])
    rows = httpx.get(
        f"{url}/api/v1/runs/admin/quickstart/{latest['id']}/history",
        params={"samples": 50},
        headers=headers,
        trust_env=False,
        timeout=10,
    ).json()
    print(
        f"trackd demo: run {latest['name']} ({latest['id']}) is {latest['state']}; "
        f"{latest['last_step'] + 1} steps, {len(rows['keys'])} metrics on the server"
    )
    print(f"  summary: {json.dumps(latest['summary'])}")
    print("where to look:")
    print(f"  API docs:  {url}/docs")
    print(
        f"  the run:   curl -H 'Authorization: Bearer {key}' {url}/api/v1/runs/admin/quickstart/{latest['id']}"
    )
    print(
        f"  in Python: TRACKD_BASE_URL={url} TRACKD_API_KEY={key} python -c "
        f"\"import trackd; print(trackd.Api().run('admin/quickstart/{latest['id']}').summary)\""
    )
    print(f"  local run log: {DEMO / 'runs'}")
    pid = json.loads((DEMO / "server.json").read_text())["pid"]
    print(f"the server keeps running (pid {pid}); stop it with: kill {pid}")
    print(f"open the web UI: {url}/#/r/admin/quickstart/{latest['id']}")
    print(f"  sign in with the demo's API key: {key}  (also in {DEMO / 'admin.key'})")


if __name__ == "__main__":
    main()
