"""What ``init`` does when a server is configured: authorize, and resolve resume.

These are the only synchronous server calls a training script makes, once, before its
first ``log()``: the entity must be one the key may write (a clear error at ``init`` beats
an upload that fails later), and resuming needs the server's last seq and step.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from typing import Any

from ._http import ServerClient
from ._wire import records as p
from ._wire.settings import load
from .cli.credentials import ServerTarget, resolve
from .cli.login import login
from .errors import CommError, UsageError


@dataclass(frozen=True, slots=True)
class OnlineStart:
    upload: p.UploadTarget
    resumed: bool
    start_seq: int
    start_step: int
    config: dict[str, Any]
    summary: dict[str, Any]


def require_key(target: ServerTarget) -> str:
    if target.api_key:
        return target.api_key
    if sys.stdin is not None and sys.stdin.isatty():
        login(host=target.base_url)
        key = resolve(load()).api_key
        if key:
            return key
    raise UsageError("api_key not configured (no-tty). call trackd.login(key=...)")


def start_online(
    target: ServerTarget,
    project: str,
    run_id: str,
    resume: bool | str | None,
    timeout: float,
    writer: str = "",
) -> OnlineStart:
    """Authorize the run with the server and resolve resume; a labelled ``writer`` of a
    shared run joins it and continues its own seqs and steps (see :func:`_writer_start`)."""
    assert target.base_url is not None
    key = require_key(target)
    try:
        with ServerClient(target.base_url, key, timeout=timeout) as client:
            answer = client.post(
                "/init", {"entity": target.entity, "project": project, "run_id": run_id}
            )
    except CommError as exc:
        refused = exc.status is not None and exc.status < 500 and exc.status != 429
        if refused or resume not in (None, False, "never") or writer:
            raise  # the server said no, or resuming (or a writer's seqs) needs its answer
        warnings.warn(
            f"init(): {exc}; logging goes on locally and the daemon uploads run {run_id!r} "
            "once the server is back",
            UserWarning,
            stacklevel=4,
        )
        upload = p.UploadTarget(target.base_url, key, target.entity, project)
        return OnlineStart(upload, False, 1, 0, {}, {})
    run = answer.get("run")
    upload = p.UploadTarget(target.base_url, key, answer["entity"], answer["project"])
    if writer:
        return _writer_start(upload, run, writer)
    resumed = check_resume(resume, run_id, run is not None, where="on the server")
    if not resumed or run is None:
        return OnlineStart(upload, False, 1, 0, {}, {})
    return OnlineStart(
        upload,
        True,
        int(run.get("last_seq") or 0) + 1,
        int(run.get("last_step") if run.get("last_step") is not None else -1) + 1,
        dict(run.get("config") or {}),
        dict(run.get("summary") or {}),
    )


def _writer_start(upload: p.UploadTarget, run: Any, writer: str) -> OnlineStart:
    """Where a labelled writer of a shared run starts: after what the server holds of its
    own log (its ``writers`` entry), else at seq 1 and step 0."""
    entries = (run or {}).get("writers") or []
    mine = next((w for w in entries if isinstance(w, dict) and w.get("label") == writer), None)
    if mine is None:
        return OnlineStart(upload, False, 1, 0, {}, {})
    last_step = mine.get("last_step")
    start_step = int(last_step) + 1 if last_step is not None else 0
    return OnlineStart(upload, True, int(mine.get("last_seq") or 0) + 1, start_step, {}, {})


def check_resume(resume: bool | str | None, run_id: str, exists: bool, where: str) -> bool:
    """wandb's resume rules: whether to continue an existing run, or a clear error."""
    if resume in (None, False, "never"):
        if exists and resume == "never":
            raise UsageError(f"init(): run {run_id!r} already exists {where} and resume='never'")
        if exists and resume is None:
            raise UsageError(
                f"init(): run {run_id!r} already exists {where}; pass resume='allow' to "
                "continue it, or use another id"
            )
        return False
    if resume in (True, "allow", "auto"):
        return exists
    if resume == "must":
        if not exists:
            raise UsageError(
                f"init(): resume='must' but run {run_id!r} does not exist {where}; "
                "pass the id of an existing run, or resume='allow'"
            )
        return True
    raise UsageError(
        f"init(): resume={resume!r} is not one of 'allow', 'must', 'never', 'auto', True, False"
    )
