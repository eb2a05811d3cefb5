"""``trackd sync``: uploading run logs after the fact, through the daemon."""

from __future__ import annotations

import sys
from pathlib import Path

from .._http import ServerClient
from .._online import require_key
from .._reader import RunData, read_run
from .._transport import Stream, Transport
from .._wire import records as p
from .._wire.layout import RUN_LOG_NAME
from .._wire.runlog import iter_frames
from .._wire.settings import Settings, load
from .._wire.upload_state import load_progress
from ..errors import UsageError
from .credentials import resolve


def find_unsynced(root: Path) -> list[Path]:
    """Run directories under ``root`` whose log holds records the server does not."""
    out = []
    for run_dir in sorted(root.glob("*run-*")):
        if not (run_dir / RUN_LOG_NAME).exists():
            continue
        if load_progress(run_dir).seq < read_run(run_dir, history=False).last_seq:
            out.append(run_dir)
    return out


def sync(paths: list[str], settings: Settings | None = None, show: bool = True) -> int:
    """Upload each run directory through the daemon; returns how many failed."""
    settings = settings or load()
    target = resolve(settings)
    if not target.base_url:
        raise UsageError("no server configured; run `trackd login --host URL` first")
    key = require_key(target)
    dirs = [Path(x) for x in paths] or find_unsynced(Path(settings.dir).expanduser())
    if not dirs:
        print("trackd sync: nothing to upload", file=sys.stderr)
        return 0
    transport = Transport(settings.daemon_path, settings.queue_bytes)
    failures = 0
    try:
        with ServerClient(target.base_url, key, timeout=settings.http_timeout) as client:
            for run_dir in dirs:
                data = read_run(run_dir, history=False)
                entity = data.entity or target.entity
                answer = client.post(
                    "/init", {"entity": entity, "project": data.project, "run_id": data.id}
                )
                upload = p.UploadTarget(target.base_url, key, answer["entity"], answer["project"])
                failures += not _sync_one(
                    transport, run_dir.resolve(), data, upload, settings, show
                )
    finally:
        transport.close()
    return failures


def _sync_one(
    transport: Transport,
    run_dir: Path,
    data: RunData,
    upload: p.UploadTarget,
    settings: Settings,
    show: bool,
) -> bool:
    stream = transport.open_sync(data.id, str(run_dir), upload)

    def progress(_elapsed: float, s: Stream) -> None:
        if show:
            _bar(data.id, max(s.uploaded, 0), last_seq)

    last_seq = max(data.last_seq, _spilled_last_seq(run_dir))  # the daemon stores spills first
    outcome = transport.wait_uploaded(stream, last_seq, settings.finish_timeout * 10, progress)
    transport.close_stream(stream)
    if show:
        _bar(data.id, max(stream.uploaded, 0), last_seq)
        print(file=sys.stderr)
    where = f"{upload.base_url} {upload.entity}/{upload.project}/{data.id}"
    for seq, why in stream.rejected:
        print(f"trackd sync: {run_dir.name}: the server refused seq {seq}: {why}", file=sys.stderr)
    if outcome == "done":
        print(f"trackd sync: {run_dir.name} -> {where}", file=sys.stderr)
        return True
    print(f"trackd sync: {run_dir.name}: {stream.upload_note or outcome}", file=sys.stderr)
    return False


def _spilled_last_seq(run_dir: Path) -> int:
    """The highest seq in the run's spill files (records a finish() could not deliver)."""
    last = 0
    for path in run_dir.glob("spill-*.trackd"):
        for payload, _end in iter_frames(path.read_bytes(), 0):
            last = max(last, p.seq_of(payload))
    return last


def _bar(run_id: str, done: int, total: int, width: int = 30) -> None:
    filled = width * min(done, total) // max(total, 1)
    bar = "#" * filled + "." * (width - filled)
    print(f"\r{run_id} [{bar}] {done}/{total} records", end="", file=sys.stderr, flush=True)
