"""What the uploader must remember across a daemon restart.

- ``<daemon dir>/uploads/<run_id>.json`` (0600): a run with data still to upload, where its
  log lives and where it goes (server URL, API key, entity, project). A new daemon picks
  these up at start; the entry goes once the run is finished and fully uploaded.
- ``<run dir>/upload.json``: how far the upload of that run got: the byte offset in the run
  log just past the last frame the server holds, and that frame's seq. Written atomically
  after every batch the server confirmed; a restarted daemon resumes from it (and the
  server ignores any seq it already has, so resuming a little early is harmless).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trackd import _protocol as p

UPLOADS_DIR = "uploads"
PROGRESS_NAME = "upload.json"


@dataclass(slots=True)
class Progress:
    offset: int = 0
    seq: int = 0
    error: str | None = None


def _write_json(path: Path, data: dict[str, Any], mode: int = 0o600) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    tmp.replace(path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def load_progress(run_dir: Path) -> Progress:
    data = _read_json(run_dir / PROGRESS_NAME) or {}
    return Progress(
        offset=int(data.get("offset", 0)), seq=int(data.get("seq", 0)), error=data.get("error")
    )


def save_progress(run_dir: Path, progress: Progress) -> None:
    _write_json(run_dir / PROGRESS_NAME, asdict(progress), 0o644)


def register(daemon_dir: Path, run_id: str, run_dir: Path, target: p.UploadTarget) -> None:
    folder = daemon_dir / UPLOADS_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    entry = {"run_id": run_id, "run_dir": str(run_dir), "target": list(target)}
    _write_json(folder / f"{run_id}.json", entry)


def unregister(daemon_dir: Path, run_id: str) -> None:
    (daemon_dir / UPLOADS_DIR / f"{run_id}.json").unlink(missing_ok=True)


def registered(daemon_dir: Path) -> list[tuple[str, Path, p.UploadTarget]]:
    """Every run a previous daemon left with data to upload."""
    out = []
    for path in sorted((daemon_dir / UPLOADS_DIR).glob("*.json")):
        entry = _read_json(path)
        if entry is None or "target" not in entry:
            continue
        out.append((entry["run_id"], Path(entry["run_dir"]), p.UploadTarget(*entry["target"])))
    return out
