"""Uploads survive a misbehaving network and server: every record reaches the server once.

Each test logs from this process through the real spawned daemon, which uploads through a
FaultProxy to the real server; the proxy injects one kind of fault mid-run. Afterwards the
server's own read API must hold every record exactly once: as many history rows as records
logged, steps 0..N-1 each once, the values logged, ``last_seq`` equal to the local log's, and
the run in its final state.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
import trackd
from trackd.errors import RunLogError

from tests._support.faultproxy import FaultProxy, ProxyStats
from tests._support.procs import daemon_dir, daemon_pid, pid_alive, start_script, wait_for
from tests.e2e.conftest import Remote

PROJECT = "faults"


class RunRef(Protocol):
    """A run as these tests need it: a ``trackd.Run``, or one logged by another process."""

    @property
    def id(self) -> str: ...
    @property
    def dir(self) -> str: ...


@dataclass(frozen=True)
class Logged:
    id: str
    dir: str


def row(i: int) -> dict[str, Any]:
    return {"i": i, "loss": 1.0 / (i + 1), "x": i * 0.1}


def log_rows(run: trackd.Run, start: int, count: int) -> int:
    for i in range(start, start + count):
        run.log(row(i))
    return start + count


def log_steadily(run: trackd.Run, start: int, seconds: float, rate: float = 200.0) -> int:
    """Log ``rate`` rows a second for ``seconds``, as a training loop would; the next index."""
    i, begin = start, time.monotonic()
    while time.monotonic() - begin < seconds:
        run.log(row(i))
        i += 1
        time.sleep(max(0.0, begin + (i - start) / rate - time.monotonic()))
    return i


def server_seq(remote: Remote, run: RunRef) -> int:
    doc = remote.run(PROJECT, run.id)
    return -1 if doc is None else int(doc["last_seq"])


def local_seq(run: RunRef) -> int:
    """The last seq the daemon has written to the run log (0 before it creates the log)."""
    try:
        return trackd.read_run(run.dir).last_seq
    except RunLogError:
        return 0


def wait_caught_up(remote: Remote, run: RunRef, timeout: float = 20.0) -> int:
    """Wait until the server holds every record the daemon has stored so far."""
    local = wait_for(lambda: local_seq(run), what="a stored record")
    wait_for(lambda: server_seq(remote, run) >= local, timeout, f"the server to reach seq {local}")
    return local


def assert_exactly_once(
    remote: Remote, run: RunRef, n: int, state: str = "finished", timeout: float = 30.0
) -> dict[str, Any]:
    """The server holds all ``n`` rows of ``run`` once each, and the run is in ``state``."""

    def final() -> dict[str, Any] | None:
        doc = remote.run(PROJECT, run.id)
        return doc if doc is not None and doc["state"] == state else None

    doc = wait_for(final, timeout, f"run {run.id} to be {state} on the server")
    local = trackd.read_run(run.dir)
    assert len(local.history) == n, "the local run log lost rows"
    assert doc["last_seq"] == local.last_seq
    rows = remote.history(PROJECT, run.id)
    assert len(rows) == n
    assert [r["_step"] for r in rows] == list(range(n))
    for r in rows:
        assert {k: r[k] for k in ("i", "loss", "x")} == row(r["_step"])
    return doc


def daemon_log() -> str:
    return (daemon_dir() / "daemon.log").read_text(errors="replace")


class StatsRecorder:
    """Samples the proxy's stats every few ms, keeping (time, stats) whenever they change."""

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        self.samples: list[tuple[float, ProxyStats]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            stats = self.proxy.stats
            if not self.samples or self.samples[-1][1] != stats:
                self.samples.append((time.monotonic(), stats))

    def times_when(self, counter: str) -> list[float]:
        """When ``counter`` went up, one entry per increment."""
        out, last = [], 0
        for t, stats in self.samples:
            value = getattr(stats, counter)
            out += [t] * (value - last)
            last = value
        return out

    def __enter__(self) -> StatsRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.mark.parametrize(
    "upstream", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_happy_path(proxy: FaultProxy, remote: Remote) -> None:
    run = trackd.init(project=PROJECT, config={"lr": 1e-3, "arch": "mlp"}, tags=["e2e"])
    n = log_rows(run, 0, 3_000)
    run.config.update({"epochs": 3})
    run.summary["best"] = 0.125
    run.finish()
    doc = assert_exactly_once(remote, run, n)
    assert doc["config"] == {"lr": 1e-3, "arch": "mlp", "epochs": 3}
    assert doc["tags"] == ["e2e"]
    assert doc["summary"] == trackd.read_run(run.dir).summary
    assert doc["summary"]["best"] == 0.125 and doc["summary"]["i"] == n - 1
    assert proxy.stats.faults_injected == 0 and proxy.stats.upstream_failures == 0


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_server_down_30s_mid_run(proxy: FaultProxy, remote: Remote) -> None:
    run = trackd.init(project=PROJECT)
    i = log_steadily(run, 0, 1.0)
    wait_caught_up(remote, run)
    proxy.down()
    i = log_steadily(run, i, 0.5)  # a request the proxy had already forwarded may land now
    before = server_seq(remote, run)
    i = log_steadily(run, i, 29.5)
    assert server_seq(remote, run) == before, "records reached the server while it was down"
    proxy.passthrough()
    # the training loop goes on; the daemon, backing off, comes back within RETRY_MAX
    while server_seq(remote, run) <= before:
        i = log_steadily(run, i, 0.5)
    i = log_steadily(run, i, 0.5)
    run.finish()
    assert_exactly_once(remote, run, i)
    assert "server unreachable" in daemon_log()


def test_500s_are_retried(proxy: FaultProxy, remote: Remote) -> None:
    run = trackd.init(project=PROJECT)
    i = log_rows(run, 0, 500)
    wait_caught_up(remote, run)
    proxy.error(500, count=5)
    i = log_steadily(run, i, 1.0)
    proxy.wait_until(lambda s: s.errors_injected == 5, timeout=20)
    i = log_steadily(run, i, 0.5)
    wait_caught_up(remote, run)
    run.finish()
    assert_exactly_once(remote, run, i)
    assert "server answered 500" in daemon_log()


def test_429_waits_for_retry_after(proxy: FaultProxy, remote: Remote) -> None:
    run = trackd.init(project=PROJECT)
    i = log_rows(run, 0, 500)
    wait_caught_up(remote, run)
    with StatsRecorder(proxy) as recorder:
        proxy.rate_limit(retry_after=1, count=3)
        i = log_steadily(run, i, 0.5)
        proxy.wait_until(lambda s: s.rate_limited == 3, timeout=20)
        stats = proxy.wait_until(lambda s: s.responses_relayed > 0 and s.requests_forwarded > 0)
        wait_caught_up(remote, run)
    limited = recorder.times_when("rate_limited")
    assert len(limited) == 3
    gaps = [b - a for a, b in zip(limited, limited[1:], strict=False)]
    assert all(gap >= 0.9 for gap in gaps), f"retried before Retry-After: gaps {gaps}"
    forwarded_after = [t for t in recorder.times_when("requests_forwarded") if t > limited[-1]]
    assert forwarded_after and forwarded_after[0] - limited[-1] >= 0.9, stats
    run.finish()
    assert_exactly_once(remote, run, i)


def test_slow_responses_time_out_but_apply_once(
    proxy: FaultProxy, remote: Remote, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKD_HTTP_TIMEOUT", "1")
    run = trackd.init(project=PROJECT)
    i = log_rows(run, 0, 500)
    wait_caught_up(remote, run)
    proxy.delay(3, count=2)
    i = log_rows(run, i, 500)
    # both held requests reach the server after the daemon gave up on them
    proxy.wait_until(lambda s: s.delayed == 2, timeout=10)
    forwarded = proxy.stats.requests_forwarded
    proxy.wait_until(lambda s: s.requests_forwarded >= forwarded + 2, timeout=10)
    i = log_rows(run, i, 500)
    wait_caught_up(remote, run)
    run.finish()
    assert_exactly_once(remote, run, i)
    assert "ReadTimeout" in daemon_log()


def test_connection_reset_mid_response(proxy: FaultProxy, remote: Remote) -> None:
    run = trackd.init(project=PROJECT)
    i = log_rows(run, 0, 500)
    wait_caught_up(remote, run)
    proxy.reset_mid_response(count=3)
    i = log_steadily(run, i, 1.0)
    proxy.wait_until(lambda s: s.resets_mid_response == 3, timeout=20)
    i = log_steadily(run, i, 0.5)
    wait_caught_up(remote, run)
    run.finish()
    assert_exactly_once(remote, run, i)


def test_daemon_kill9_mid_upload(proxy: FaultProxy, remote: Remote) -> None:
    run = trackd.init(project=PROJECT)
    i = log_rows(run, 0, 500)
    wait_caught_up(remote, run)
    old = daemon_pid()
    proxy.delay(3, count=1)
    i = log_rows(run, i, 500)
    proxy.wait_until(lambda s: s.delayed == 1, timeout=10)
    forwarded = proxy.stats.requests_forwarded
    os.kill(old, signal.SIGKILL)  # its batch is in flight, and the server will apply it
    wait_for(lambda: not pid_alive(old), 5, "the daemon to die")
    i = log_steadily(run, i, 1.0)

    def new_daemon() -> int | None:
        try:
            pid = daemon_pid()
        except (OSError, ValueError):
            return None
        return pid if pid != old and pid_alive(pid) else None

    wait_for(new_daemon, 10, "the client to start a new daemon")
    proxy.wait_until(lambda s: s.requests_forwarded > forwarded, timeout=10)
    i = log_steadily(run, i, 0.5)
    run.finish()
    assert_exactly_once(remote, run, i)


def test_refused_upload_reports_and_keeps_data(proxy: FaultProxy, remote: Remote) -> None:
    run = trackd.init(project=PROJECT)
    i = log_rows(run, 0, 300)
    wait_caught_up(remote, run)
    proxy.error(403, count=None, message="API key revoked for project 'faults'")
    i = log_rows(run, i, 300)
    start = time.monotonic()
    with pytest.warns(UserWarning, match=r"API key revoked for project 'faults' \(HTTP 403\)"):
        run.finish()
    assert time.monotonic() - start < 10
    progress = (Path(run.dir) / "upload.json").read_text()
    assert "API key revoked" in progress and "403" in progress
    local = trackd.read_run(run.dir)
    assert local.state == "finished"
    assert [r["_step"] for r in local.history] == list(range(i))
    assert all({k: r[k] for k in ("i", "loss", "x")} == row(r["_step"]) for r in local.history)
    doc = remote.run(PROJECT, run.id)
    assert doc is not None and doc["state"] == "running"  # the rest never got there


def test_finish_while_unreachable_returns_and_uploads_later(
    proxy: FaultProxy,
    remote: Remote,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = trackd.init(project=PROJECT)
    i = log_rows(run, 0, 300)
    wait_caught_up(remote, run)
    proxy.down()
    i = log_rows(run, i, 300)
    start = time.monotonic()
    with pytest.warns(UserWarning) as seen:
        run.finish()
    took = time.monotonic() - start
    message = str(seen[0].message)
    assert took < 10, f"finish() took {took:.1f} s"
    assert f"has not confirmed run '{run.id}' yet" in message
    assert "keeps uploading in the background" in message
    time.sleep(1.0)
    assert server_seq(remote, run) < local_seq(run)
    proxy.passthrough()
    assert_exactly_once(remote, run, i, timeout=30)


CRASHING_SCRIPT = """
import sys, time, trackd
run = trackd.init(project="faults")
print(run.id, run.dir, flush=True)
sys.stdin.readline()
for i in range(%d):
    run.log({"i": i, "loss": 1.0 / (i + 1), "x": i * 0.1})
print("logged", flush=True)
time.sleep(600)
"""


def test_crash_leaves_torn_tail_next_daemon_uploads_the_rest(
    proxy: FaultProxy, remote: Remote, tmp_path: Path
) -> None:
    n = 1_000
    proc = start_script(CRASHING_SCRIPT % n, tmp_path, stdin=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        run_id, run_dir = proc.stdout.readline().split()
        crashed = Logged(run_id, run_dir)
        proxy.down()  # what the script logs now stays pending in the daemon
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "logged"
        wait_for(lambda: local_seq(crashed) > n, 10, "the daemon to store every record")
        old = daemon_pid()
        proc.kill()  # the machine ran out of memory: training and daemon die together,
        os.kill(old, signal.SIGKILL)  # the daemon in the middle of writing a frame
    finally:
        proc.kill()
        proc.communicate(timeout=10)
    with open(Path(run_dir) / "run.trackd", "ab") as log:
        log.write(b"\x40\x00\x00\x00\x01\x02\x03\x04half a frame")
    proxy.passthrough()
    # the next training run starts a daemon, which takes over the crashed run's upload
    run = trackd.init(project=PROJECT)
    log_rows(run, 0, 10)
    run.finish()
    wait_for(lambda: f"run {run_id}: upload complete" in daemon_log(), 30, "the upload to end")
    assert_exactly_once(remote, crashed, n, state="running")
    assert_exactly_once(remote, run, 10)
    assert not (daemon_dir() / "uploads" / f"{run_id}.json").exists()
    pid = daemon_pid()
    busy = _cpu_seconds(pid)
    time.sleep(1.0)
    assert _cpu_seconds(pid) - busy < 0.5, "the daemon spins on the torn tail"


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_daemon_dies_while_finish_waits_for_the_upload(
    proxy: FaultProxy, remote: Remote, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKD_FINISH_TIMEOUT", "15")
    run = trackd.init(project=PROJECT)
    i = log_rows(run, 0, 300)
    wait_caught_up(remote, run)
    proxy.delay(3, count=1)
    i = log_rows(run, i, 300)
    old = daemon_pid()

    def kill_mid_upload() -> None:
        proxy.wait_until(lambda s: s.delayed == 1, timeout=10)
        os.kill(old, signal.SIGKILL)

    killer = threading.Thread(target=kill_mid_upload)
    killer.start()
    start = time.monotonic()
    run.finish()
    took = time.monotonic() - start
    killer.join()
    assert_exactly_once(remote, run, i)
    assert took < 10, f"finish() took {took:.1f} s"
