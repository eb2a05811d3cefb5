"""One writer per run, and a link to the daemon that loses nothing: the attach handshake,
Nack and re-attach, a burst of clients, finish() timing out, fork, and a resume racing the
upload of a crashed attempt. Real training processes, the real daemon and server."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import trackd
from trackd._spawn import daemon_running, ensure_daemon
from trackd.errors import UsageError

from tests._support.faultproxy import FaultProxy
from tests._support.procs import (
    daemon_dir,
    daemon_pid,
    pid_alive,
    read_when,
    start_script,
    wait_for,
)
from tests.e2e.conftest import Remote

SAME_ID = """
import sys, time, trackd
from trackd.errors import UsageError
while time.time() < {go}:
    time.sleep(0.001)
try:
    run = trackd.init(project="x", id="same", resume="allow")
except UsageError as exc:
    print("REFUSED", exc, flush=True)
    sys.exit(3)
for i in range(300):
    run.log({{"w": {k}, "i": i}})
    if i % 50 == 0:
        time.sleep(0.01)
run.finish()
print("DONE", flush=True)
"""


def _same_id_writers(tmp_path: Path, count: int) -> list[tuple[int, str, str]]:
    go = time.time() + 4.0  # every process is up and importing trackd before this
    procs = [start_script(SAME_ID.format(go=go, k=k), tmp_path) for k in range(count)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=90)
        results.append((proc.returncode, out, err))
    return results


def _check_writers(results: list[tuple[int, str, str]], rows: list[dict[str, Any]]) -> None:
    host = os.uname().nodename
    done = [k for k, (code, _out, _err) in enumerate(results) if code == 0]
    for code, out, err in results:
        assert "ZMQError" not in err and "Traceback" not in err, err
        assert code in (0, 3), err
        if code == 3:
            assert re.search(rf"run 'same' is being written by .*pid \d+ on host '{host}'", out)
    assert done, "no writer got the run"
    assert len(rows) == 300 * len(done)
    blocks = [rows[start : start + 300] for start in range(0, len(rows), 300)]
    assert sorted(block[0]["w"] for block in blocks) == done  # one writer per block
    for block in blocks:
        assert [(r["w"], r["i"]) for r in block] == [(block[0]["w"], i) for i in range(300)]


def _daemons_started() -> set[str]:
    text = (daemon_dir() / "daemon.log").read_text()
    assert "another daemon holds" not in text
    return set(re.findall(r"daemon (\d+) serving", text))


def test_second_live_writer_is_refused_offline(tmp_path: Path) -> None:
    results = _same_id_writers(tmp_path, 5)
    rows: list[dict[str, Any]] = []
    for run_dir in sorted(Path(os.environ["TRACKD_DIR"]).glob("*run-*-same")):
        data = trackd.read_run(run_dir)
        assert data.state == "finished"
        rows += data.history
    _check_writers(results, rows)
    assert len(_daemons_started()) == 1


def test_second_live_writer_is_refused_online(
    tmp_path: Path, proxy: FaultProxy, remote: Remote
) -> None:
    results = _same_id_writers(tmp_path, 5)
    done = sum(code == 0 for code, _out, _err in results)
    wait_for(lambda: len(remote.history("x", "same")) >= 300 * done, timeout=30, what="rows")
    _check_writers(results, remote.history("x", "same"))
    doc = remote.run("x", "same")
    assert doc is not None and doc["state"] == "finished"
    assert len(_daemons_started()) == 1


BURST = """
import sys, time, trackd
while time.time() < {go}:
    time.sleep(0.001)
run = trackd.init(project="b")
for i in range(10):
    run.log({{"i": i}})
print(run.dir, flush=True)
sys.stdin.readline()  # the test kills the daemon now: every client looks for a new one
for i in range(10, 20):
    run.log({{"i": i}})
run.finish()
"""


def test_burst_of_inits_and_of_respawns_starts_one_daemon_each(tmp_path: Path) -> None:
    go = time.time() + 4.0
    procs = [start_script(BURST.format(go=go), tmp_path, stdin=subprocess.PIPE) for _ in range(10)]
    dirs = [proc.stdout.readline().strip() for proc in procs if proc.stdout]
    assert len(_daemons_started()) == 1
    first = daemon_pid()
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: not pid_alive(first), what="daemon to die")
    for proc in procs:
        _out, err = proc.communicate("go\n", timeout=90)
        assert proc.returncode == 0, err
    for run_dir in dirs:
        assert [r["i"] for r in trackd.read_run(run_dir).history] == list(range(20))
    assert len(_daemons_started()) == 2


STEADY = """
import sys, time, trackd
run = trackd.init(project="p", id="steady")
print(run.dir, flush=True)
for i in range({n}):
    run.log({{"i": i}})
    if i % 100 == 0:
        print(i, flush=True)
        time.sleep(0.01)
run.finish()
print("DONE", flush=True)
"""


def test_records_for_a_lost_run_are_nacked_and_resent(tmp_path: Path) -> None:
    """The daemon is replaced behind the client's back (started by another process while
    the client is stopped): records reach a daemon with no writer for the run; it Nacks
    them, and the client attaches again and resends every unacked record."""
    ensure_daemon(daemon_dir())  # started by this process, not by the training process
    first = daemon_pid()
    proc = start_script(STEADY.format(n=20_000), tmp_path)
    assert proc.stdout is not None
    run_dir = Path(proc.stdout.readline().strip())
    while int(proc.stdout.readline()) < 3000:
        pass
    proc.send_signal(signal.SIGSTOP)
    try:
        os.kill(first, signal.SIGKILL)
        # its threads may still be exiting (holding the lock) when its leader is a zombie
        wait_for(lambda: not daemon_running(daemon_dir()), what="daemon to let go")
        ensure_daemon(daemon_dir())  # another client starts the next daemon
        assert daemon_pid() != first
    finally:
        proc.send_signal(signal.SIGCONT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "DONE" in out, err
    data = read_when(run_dir, "finished")
    assert [row["i"] for row in data.history] == list(range(20_000))
    assert (
        "records not stored (no writer for this run)" in (daemon_dir() / "daemon.log").read_text()
    )


FINISH_TIMES_OUT = """
import sys, time, trackd
run = trackd.init(project="p", id="keep")
for i in range(1000):
    run.log({"i": i})
time.sleep(0.5)  # these are durable in the run log
print(run.dir, flush=True)
sys.stdin.readline()  # the test kills the daemon now and keeps another from starting
for i in range(1000, 3000):
    run.log({"i": i})
run.finish()
print("DONE", flush=True)
"""


def test_finish_timeout_keeps_unacked_records_for_sync(
    tmp_path: Path, proxy: FaultProxy, remote: Remote, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKD_FINISH_TIMEOUT", "2")
    proc = start_script(FINISH_TIMES_OUT, tmp_path, stdin=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdin is not None
    run_dir = Path(proc.stdout.readline().strip())
    pid = daemon_pid()
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(pid), what="daemon to die")
    sock = daemon_dir() / "daemon.sock"
    sock.unlink()
    sock.mkdir()  # a daemon started now exits at once: it cannot bind its socket
    out, err = proc.communicate("go\n", timeout=60)
    assert proc.returncode == 0 and "DONE" in out, err
    assert "finish(): the daemon did not confirm" in err and "spill-" in err
    assert "ZMQError" not in err and "Traceback" not in err
    sock.rmdir()
    sync = subprocess.run(
        [sys.executable, "-m", "trackd", "sync", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
    )
    assert sync.returncode == 0, sync.stderr
    rows = wait_for(lambda: len(remote.history("p", "keep")) >= 3000 and remote, timeout=30)
    assert [r["i"] for r in rows.history("p", "keep")] == list(range(3000))
    assert [r["i"] for r in trackd.read_run(run_dir).history] == list(range(3000))


def _fork_and_log() -> int:
    """Fork; the child logs to the parent's run. 0: it got UsageError; 9: it hung."""
    pid = os.fork()
    if pid == 0:
        try:
            trackd.log({"child": 1})
            code = 1
        except UsageError:
            code = 0
        except BaseException:  # noqa: BLE001 - anything else is a failure
            code = 2
        os._exit(code)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return 9


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_fork_while_logging_at_full_speed_never_deadlocks() -> None:
    run = trackd.init(project="p")
    stop = threading.Event()
    count = [0]

    def logger() -> None:
        while not stop.is_set():
            run.log({"i": count[0]})
            count[0] += 1

    thread = threading.Thread(target=logger)
    thread.start()
    try:
        codes = [_fork_and_log() for _ in range(40)]
    finally:
        stop.set()
        thread.join()
    run.finish()
    assert codes == [0] * 40
    assert [r["i"] for r in trackd.read_run(run.dir).history] == list(range(count[0]))


RESUMED = """
import sys, time, trackd
run = trackd.init(project="r", id="again", resume="allow")
print("STARTED", flush=True)
if {attempt} == 1:
    sys.stdin.readline()  # the test slows ingest down now
for i in range(2000):
    run.log({{"attempt": {attempt}, "i": i}})
if {attempt} == 1:
    time.sleep(0.5)  # durable in the run log, not on the server
    print("LOGGED", flush=True)
    time.sleep(600)  # the test kills this attempt
run.finish()
"""


def test_resume_at_once_after_kill9_keeps_both_attempts(
    tmp_path: Path, proxy: FaultProxy, remote: Remote
) -> None:
    first = start_script(RESUMED.format(attempt=1), tmp_path, stdin=subprocess.PIPE)
    assert first.stdout is not None and first.stdin is not None
    assert first.stdout.readline().startswith("STARTED")
    wait_for(lambda: remote.run("r", "again"), what="the first attempt's RunStart uploaded")
    time.sleep(0.5)
    proxy.delay(4.0, count=1)  # the next ingest (the rows) reaches the server late
    first.stdin.write("go\n")
    first.stdin.flush()
    assert first.stdout.readline().startswith("LOGGED")
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=10)
    second = start_script(RESUMED.format(attempt=2), tmp_path)
    _out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err

    def all_rows() -> list[dict[str, Any]] | None:
        rows = remote.history("r", "again")
        return rows if len(rows) >= 4000 else None

    rows = wait_for(all_rows, timeout=60, what="both attempts on the server")
    by_attempt: dict[int, list[int]] = defaultdict(list)
    for row in rows:
        by_attempt[row["attempt"]].append(row["i"])
    assert by_attempt == {1: list(range(2000)), 2: list(range(2000))}
    assert [r["_step"] for r in rows] == list(range(4000))
    doc = remote.run("r", "again")
    assert doc is not None and doc["state"] == "finished"
