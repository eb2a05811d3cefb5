"""``trackd status``: the daemon, the server, and the uploads still pending."""

from __future__ import annotations

from .._spawn import daemon_running
from .._wire.layout import PID_NAME
from .._wire.settings import Settings, load
from .._wire.upload_state import load_progress, registered
from .credentials import resolve


def status(settings: Settings | None = None) -> int:
    """Print what the daemon is doing and what it still has to upload; returns 0."""
    settings = settings or load()
    path = settings.daemon_path
    alive = path.is_dir() and daemon_running(path)
    pid = (path / PID_NAME).read_text().strip() if alive and (path / PID_NAME).exists() else "-"
    target = resolve(settings)
    print(f"daemon: {'running (pid ' + pid + ')' if alive else 'not running'} in {path}")
    print(f"server: {target.base_url or '(none; runs are stored offline)'}")
    for entry in registered(path):
        progress = load_progress(entry.run_dir)
        state = f"failed: {progress.error}" if progress.error else "uploading"
        print(f"run {entry.run_id}: {state}; server has seq {progress.seq} ({entry.run_dir})")
    return 0
