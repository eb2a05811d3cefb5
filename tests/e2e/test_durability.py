"""Nothing logged is lost: crashes of the training process and of the daemon, torn logs,
fork, a stalled daemon, bad records. Real processes, real signals, real files."""

from __future__ import annotations

import multiprocessing
import os
import signal
import stat
import threading
import time
from pathlib import Path

import pytest
import trackd
import zmq
from trackd._wire import records as p
from trackd.errors import UsageError

from tests._support.procs import (
    daemon_dir,
    daemon_pid,
    only_run_dir,
    pid_alive,
    read_when,
    run_script,
    start_script,
    wait_for,
)


def test_100k_records_read_back_exactly() -> None:
    run = trackd.init(project="p")
    for i in range(100_000):
        run.log({"i": i, "x": i * 0.5, "s": i % 7 == 0})
    run.finish()
    data = trackd.read_run(run.dir)
    assert len(data.history) == 100_000
    for i, row in enumerate(data.history):
        assert (row["_step"], row["i"], row["x"], row["s"]) == (i, i, i * 0.5, i % 7 == 0)
    assert data.state == "finished" and data.torn_bytes == 0


KILL_SCRIPT = """
import sys, time, trackd
run = trackd.init(project="p")
print(run.dir, flush=True)
i = 0
next_t = time.monotonic()
while True:
    run.log({"i": i, "loss": 1.0 / (i + 1)})
    print(i, time.monotonic(), flush=(i % 100 == 0))
    i += 1
    next_t += 1e-4  # a steady 10,000 records/s
    while time.monotonic() < next_t:
        pass
"""


def test_kill9_training_process_loses_nothing_returned(tmp_path: Path) -> None:
    proc = start_script(KILL_SCRIPT, tmp_path)
    assert proc.stdout is not None
    run_dir = Path(proc.stdout.readline().strip())
    lines = []
    while len(lines) < 20_000:  # two seconds of logging
        lines.append(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    out, _ = proc.communicate(timeout=10)
    returned = {}
    for line in lines + out.splitlines():
        parts = line.split()
        if len(parts) == 2:
            returned[int(parts[0])] = float(parts[1])
    must_have = {i for i, t in returned.items() if t < killed_at - 0.1}
    assert len(must_have) > 15_000
    data = read_when(run_dir, "crashed", timeout=10)
    logged = [row["i"] for row in data.history]
    assert len(logged) == len(set(logged)), "a record was stored twice"
    missing = must_have - set(logged)
    assert not missing, f"{len(missing)} returned records lost, e.g. {sorted(missing)[:5]}"
    assert logged == sorted(logged)


def test_kill9_daemon_midrun_every_record_exactly_once() -> None:
    run = trackd.init(project="p")
    for i in range(20_000):
        run.log({"i": i})
    first = daemon_pid()
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: not pid_alive(first), what="daemon to die")
    for i in range(20_000, 40_000):
        run.log({"i": i})
        if i % 1000 == 0:
            time.sleep(0.01)
    run.finish()
    assert daemon_pid() != first
    data = trackd.read_run(run.dir)
    assert [row["i"] for row in data.history] == list(range(40_000))
    assert [row["_step"] for row in data.history] == list(range(40_000))
    assert data.state == "finished"


def test_kill9_daemon_before_finish_only() -> None:
    run = trackd.init(project="p")
    for i in range(5_000):
        run.log({"i": i})
    os.kill(daemon_pid(), signal.SIGKILL)
    run.finish()  # finds the daemon dead, starts another, resends what was unconfirmed
    data = trackd.read_run(run.dir)
    assert [row["i"] for row in data.history] == list(range(5_000))


def test_corrupt_tail_is_skipped_and_cut_on_resume() -> None:
    run = trackd.init(project="p", id="torn1")
    for i in range(100):
        run.log({"i": i})
    run.finish()
    log_file = Path(run.dir) / "run.trackd"
    good_size = log_file.stat().st_size
    with open(log_file, "ab") as f:
        f.write(b"\x40\x00\x00\x00\xde\xad\xbe\xefpartial")  # a torn frame
    data = trackd.read_run(run.dir)
    assert len(data.history) == 100 and data.torn_bytes == 15
    # a flipped byte inside the last frame: stop before it
    raw = bytearray(log_file.read_bytes())
    raw[good_size - 2] ^= 0xFF
    log_file.write_bytes(bytes(raw))
    data = trackd.read_run(run.dir)
    assert len(data.history) == 100 and data.state == "running"  # the Finish frame is gone
    run2 = trackd.init(project="p", id="torn1", resume="must")
    run2.log({"i": 100})
    run2.finish()
    data = trackd.read_run(run.dir)
    assert [r["i"] for r in data.history] == list(range(101))
    assert data.torn_bytes == 0 and data.state == "finished"


def test_reader_rejects_other_files(tmp_path: Path) -> None:
    bogus = tmp_path / "run.trackd"
    bogus.write_bytes(b"not a run log at all")
    with pytest.raises(trackd.errors.RunLogError, match="not a trackd run log"):
        trackd.read_run(bogus)
    with pytest.raises(trackd.errors.RunLogError, match="no run log at"):
        trackd.read_run(tmp_path / "nothing")


def _child_logs_to_parent_run(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    try:
        trackd.log({"from_child": 1})
        queue.put("no error")
    except UsageError as exc:
        queue.put(str(exc))
    own = trackd.init(project="p", name="child")
    own.log({"child": 1})
    own.finish()
    queue.put(own.dir)


def test_fork_child_gets_clear_error_and_own_run() -> None:
    run = trackd.init(project="p")
    run.log({"parent": 0})
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_logs_to_parent_run, args=(queue,))
    child.start()
    message = queue.get(timeout=30)
    child_dir = queue.get(timeout=30)
    child.join(timeout=30)
    assert "was forked from pid" in message and "call trackd.init() in the child" in message
    run.log({"parent": 1})
    run.finish()
    assert [r["parent"] for r in trackd.read_run(run.dir).history] == [0, 1]
    child_data = trackd.read_run(child_dir)
    assert [r["child"] for r in child_data.history] == [1]
    assert child_data.state == "finished"


def test_stalled_daemon_spills_to_disk_without_blocking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKD_QUEUE_BYTES", str(64 * 1024))
    run = trackd.init(project="p")
    pid = daemon_pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        start = time.perf_counter()
        for i in range(30_000):
            run.log({"i": i, "x": 0.5})
        elapsed = time.perf_counter() - start
        spills = list(Path(run.dir).glob("spill-*.trackd"))
        assert spills and spills[0].stat().st_size > 100_000
    finally:
        os.kill(pid, signal.SIGCONT)
    assert elapsed < 10  # never waited on the stopped daemon
    run.finish()
    data = trackd.read_run(run.dir)
    assert [r["i"] for r in data.history] == list(range(30_000))
    assert not list(Path(run.dir).glob("spill-*.trackd"))


def test_bad_messages_never_kill_the_daemon() -> None:
    run = trackd.init(project="p")
    run.log({"before": 1})
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"ipc://{daemon_dir() / 'daemon.sock'}")
    for junk in [
        b"",
        b"\xc1",
        b"\x93\x01\x02",
        p.encode(p.Flush(p.FLUSH, "nope", 1)),
        b"\x96\x02\xa1x\x05\x00\x00\xc0",
        bytes(range(256)),
    ]:
        sock.send(junk)
    sock.send_multipart([b"a", b"b", b"c"])
    sock.close()
    ctx.term()
    pid = daemon_pid()
    run.log({"after": 2})
    run.finish()
    assert pid_alive(pid) and daemon_pid() == pid
    data = trackd.read_run(run.dir)
    assert [r.get("before", r.get("after")) for r in data.history] == [1, 2]


def test_uncaught_exception_marks_failed_and_atexit_finishes(tmp_path: Path) -> None:
    result = run_script(
        """
        import trackd
        trackd.init(project="p")
        trackd.log({"a": 1})
        raise ValueError("training blew up")
        """,
        tmp_path,
    )
    assert result.returncode == 1 and "training blew up" in result.stderr
    failed = trackd.read_run(only_run_dir())
    assert failed.state == "failed" and failed.exit_code == 1 and len(failed.history) == 1
    for path in only_run_dir().parent.iterdir():
        path.rename(tmp_path / path.name)
    result = run_script("import trackd\ntrackd.init(project='p')\ntrackd.log({'a': 1})\n", tmp_path)
    assert result.returncode == 0, result.stderr
    assert trackd.read_run(only_run_dir()).state == "finished"


def test_daemon_shared_private_and_exits_when_idle(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRACKD_DAEMON_IDLE_TIMEOUT", "1")
    monkeypatch.setenv("TRACKD_LIVENESS_INTERVAL", "0.2")
    run = trackd.init(project="p")
    pid = daemon_pid()
    assert stat.S_IMODE(daemon_dir().stat().st_mode) == 0o700
    result = run_script("import trackd\ntrackd.init(project='q').finish()\n", tmp_path)
    assert result.returncode == 0, result.stderr
    assert daemon_pid() == pid  # a second process reused the same daemon
    run.finish()
    from trackd import _session

    _session.teardown()
    wait_for(lambda: not pid_alive(pid), timeout=10, what="idle daemon to exit")
    assert "idle for" in (daemon_dir() / "daemon.log").read_text()


def test_sigterm_drains_and_flushes() -> None:
    run = trackd.init(project="p")
    for i in range(1000):
        run.log({"i": i})
    run._transport.flush_batches()  # type: ignore[union-attr]
    pid = daemon_pid()
    time.sleep(0.3)
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not pid_alive(pid), what="daemon to stop")
    run.finish()  # a new daemon takes over; nothing is lost or doubled
    assert [r["i"] for r in trackd.read_run(run.dir).history] == list(range(1000))


def test_finish_says_what_it_waits_for(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TRACKD_SILENT")
    run = trackd.init(project="p")
    for i in range(1000):
        run.log({"i": i})
    pid = daemon_pid()
    os.kill(pid, signal.SIGSTOP)
    timer = threading.Timer(1.8, os.kill, (pid, signal.SIGCONT))
    timer.start()
    try:
        run.finish()
    finally:
        timer.join()
    assert "trackd: waiting for the daemon to store" in capsys.readouterr().err
    assert len(trackd.read_run(run.dir).history) == 1000
