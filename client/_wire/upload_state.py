"""What the uploader remembers across a daemon restart, and what ``trackd status`` reads.

- ``<run dir>/upload.json`` (:class:`Progress`): how far the upload of that run got: the
  byte offset in the run log just past the last frame the server holds, that frame's seq,
  the error that stopped the upload, if one did, and the records the server refused
  (``rejected``: ``[seq, reason]`` pairs, the first ``MAX_REJECTED`` of ``rejected_count``;
  the records themselves stay in the run log). Written atomically after every batch
  the server confirmed; a restarted daemon resumes from it (the server ignores any seq it
  already has, so resuming a little early is harmless).
- ``<daemon dir>/uploads/<run_id>.json`` (:class:`Registration`, mode 0600: it holds the
  API key): a run with data still to upload, where its log lives and where it goes. A new
  daemon picks these up at start; the entry goes once the run is finished and uploaded. A
  labelled writer of a shared run has its own entry, ``<run_id>@<writer>.json``, whose
  ``writer`` names it (absent: ``""``).

Both files carry ``"v": 1``; a file without ``v`` is version 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import records as r
from .jsonfile import read_json, write_json
from .layout import PROGRESS_NAME, UPLOADS_DIR, stream_key

STATE_VERSION = 1
MAX_REJECTED = 100


@dataclass(slots=True)
class Progress:
    offset: int = 0
    seq: int = 0
    error: str | None = None
    rejected: list[tuple[int, str]] = field(default_factory=list)
    rejected_count: int = 0

    def add_rejected(self, seq: int, reason: str) -> None:
        if all(s != seq for s, _ in self.rejected):
            self.rejected_count += 1
            if len(self.rejected) < MAX_REJECTED:
                self.rejected.append((seq, reason))


@dataclass(frozen=True, slots=True)
class Registration:
    run_id: str
    run_dir: Path
    target: r.UploadTarget
    writer: str = ""


def load_progress(run_dir: Path) -> Progress:
    data = read_json(run_dir / PROGRESS_NAME) or {}
    try:
        rejected = [(int(seq), str(reason)) for seq, reason in data.get("rejected") or ()]
        return Progress(
            int(data.get("offset", 0)),
            int(data.get("seq", 0)),
            data.get("error"),
            rejected,
            int(data.get("rejected_count", len(rejected))),
        )
    except (TypeError, ValueError):
        return Progress()


def save_progress(run_dir: Path, progress: Progress) -> None:
    doc = {
        "v": STATE_VERSION,
        "offset": progress.offset,
        "seq": progress.seq,
        "error": progress.error,
        "rejected": [list(pair) for pair in progress.rejected],
        "rejected_count": progress.rejected_count,
    }
    write_json(run_dir / PROGRESS_NAME, doc, 0o600)


def register(
    daemon_dir: Path, run_id: str, run_dir: Path, target: r.UploadTarget, writer: str = ""
) -> None:
    folder = daemon_dir / UPLOADS_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    entry = {"v": STATE_VERSION, "run_id": run_id, "run_dir": str(run_dir), "target": list(target)}
    if writer:
        entry["writer"] = writer
    write_json(folder / f"{stream_key(run_id, writer)}.json", entry)


def unregister(daemon_dir: Path, key: str) -> None:
    """Forget the entry of ``key`` (a run id, or ``<run_id>@<writer>``)."""
    (daemon_dir / UPLOADS_DIR / f"{key}.json").unlink(missing_ok=True)


def registered(daemon_dir: Path) -> list[Registration]:
    """Every run a daemon left with data to upload (unreadable entries are skipped)."""
    out = []
    for path in sorted((daemon_dir / UPLOADS_DIR).glob("*.json")):
        entry = read_json(path)
        try:
            assert entry is not None
            target = r.UploadTarget(*entry["target"])
            writer = str(entry.get("writer") or "")
            out.append(Registration(str(entry["run_id"]), Path(entry["run_dir"]), target, writer))
        except (AssertionError, KeyError, TypeError):
            continue
    return out
