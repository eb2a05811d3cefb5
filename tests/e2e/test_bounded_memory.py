"""Reading a long run back costs bounded memory: offline resume, the daemon's attach and
spill recovery stream the log a chunk at a time instead of loading it whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from trackd._wire import records as p
from trackd._wire.layout import RUN_LOG_NAME
from trackd._wire.runlog import frame, header_bytes

from tests._support.procs import daemon_pid

RECORDS = 1_000_000  # about 50 MB of run log


def _write_long_log(run_dir: Path, run_id: str) -> int:
    """A finished offline run of ``RECORDS`` records, written straight in the log format."""
    run_dir.mkdir(parents=True)
    encode = p.history_encoder()
    start = p.RunStart(
        p.RUN_START,
        run_id,
        1,
        None,
        "p",
        "long",
        None,
        None,
        [],
        None,
        {"lr": 0.1},
        1.0,
        "host",
        1,
        None,
        None,
        "offline",
    )
    with open(run_dir / RUN_LOG_NAME, "wb") as f:
        f.write(header_bytes() + frame(p.encode(start)))
        chunk = []
        for i in range(RECORDS):
            chunk.append(frame(encode(run_id, i + 2, i, 2.0 + i, {"loss": float(i)})))
            if len(chunk) == 10_000:
                f.write(b"".join(chunk))
                chunk.clear()
        f.write(b"".join(chunk))
        finish = p.Finish(p.FINISH, run_id, RECORDS + 2, "finished", 0, 3.0)
        f.write(frame(p.encode(finish)))
    return (run_dir / RUN_LOG_NAME).stat().st_size


PEAK = """
import json, resource, sys, trackd
{body}
print(json.dumps({{"peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, **out}}))
"""


def _peak(body: str, tmp_path: Path) -> dict[str, int]:
    code = PEAK.format(body=textwrap.dedent(body))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_offline_resume_and_attach_of_a_long_run_stay_small(tmp_path: Path) -> None:
    root = Path(os.environ["TRACKD_DIR"])
    size = _write_long_log(root / "offline-run-20260101_000000-longrun", "longrun")
    assert size > 45 << 20
    fresh = _peak("run = trackd.init(project='p', mode='offline'); out = {}", tmp_path)
    resumed = _peak(
        """
        run = trackd.init(project="p", mode="offline", id="longrun", resume="allow")
        run.log({"loss": -1.0})
        out = {"step": run.step}
        """,
        tmp_path,
    )
    assert resumed["step"] == RECORDS + 1  # it did read the whole log
    grown_mib = (resumed["peak_kib"] - fresh["peak_kib"]) / 1024
    assert grown_mib < 30, f"offline resume of a {size >> 20} MiB log grew {grown_mib:.0f} MiB"
    daemon_peak_mib = _vm_hwm_kib(daemon_pid()) / 1024
    assert daemon_peak_mib < 120, f"the daemon peaked at {daemon_peak_mib:.0f} MiB on attach"
