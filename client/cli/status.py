"""``trackd status``: the daemon, the server, and the uploads still pending."""

from __future__ import annotations

from pathlib import Path

from .._spawn import daemon_running
from .._wire.layout import PID_NAME, PROGRESS_NAME
from .._wire.settings import Settings, load
from .._wire.upload_state import Progress, load_progress, registered
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
    shown = set()
    for entry in registered(path):
        progress = load_progress(entry.run_dir)
        state = f"failed: {progress.error}" if progress.error else "uploading"
        print(f"run {entry.run_id}: {state}; server has seq {progress.seq} ({entry.run_dir})")
        _print_refused(progress)
        shown.add(entry.run_dir.resolve())
    for run_dir in _run_dirs(Path(settings.dir).expanduser()):
        progress = load_progress(run_dir)
        if progress.rejected_count and run_dir.resolve() not in shown:
            print(f"run {run_dir.name}: uploaded; server has seq {progress.seq} ({run_dir})")
            _print_refused(progress)
    return 0


def _run_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("*run-*") if (p / PROGRESS_NAME).is_file())


def _print_refused(progress: Progress) -> None:
    if not progress.rejected_count:
        return
    print(f"  {progress.rejected_count} record(s) refused by the server:")
    for seq, why in progress.rejected:
        print(f"    seq {seq}: {why}")
    if progress.rejected_count > len(progress.rejected):
        print(f"    ... and {progress.rejected_count - len(progress.rejected)} more")
