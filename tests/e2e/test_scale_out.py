"""Issue 13's acceptance: three server replicas on one PostgreSQL behind haproxy, eight
training processes on two "machines" (two daemon directories), one replica ``kill -9``-ed
and restarted mid-run: every record on the server exactly once, every run ``finished``.

Each process logs ``RECORDS`` rows ``{"x": step, "w": index}`` (TRACKD_SCALE=full: 50,000;
the default is small and paced, so the kill lands while every process is still logging),
with ``define_metric("x", summary="mean")``. Read back through haproxy's read API: the
history holds each step once with its value, the run's ``last_seq`` counts every record,
and the mean of ``x`` over every value the server applied is exactly ``(n - 1) / 2``, which
a record applied twice (or lost) would move. While the runs are written, the test reads a
run's progress through haproxy (round robin: every replica answers in turn) and sees it
grow: live reads need no replica of their own.

``file_store`` gives the replicas' file-store arguments: one data directory shared by all
(``shared-dir``); another store (e.g. S3) is one more parameter.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgpack
import pytest

from tests._support.postgres import PostgresCluster
from tests._support.procs import start_script
from tests._support.replicas import Haproxy, replicas
from tests._support.scale import full_scale, scaled

PROCESSES, MACHINES = 8, 2
RECORDS = scaled(3000, 50_000)
RATE = 0 if full_scale() else 1000  # records/s per process (0: as fast as it can)
PROJECT = "scale"

TRAIN = """
import os, time
import trackd

n, index, rate = int(os.environ["N"]), int(os.environ["INDEX"]), float(os.environ["RATE"])
run = trackd.init(project="scale", id=f"scale-{index}")
run.define_metric("x", summary="mean")
t0 = time.monotonic()
for step in range(n):
    run.log({"x": float(step), "w": index})
    if rate and step % 50 == 0:
        time.sleep(max(0.0, t0 + step / rate - time.monotonic()))
run.finish()
"""


@pytest.fixture(params=["shared-dir"])
def file_store(request: pytest.FixtureRequest) -> list[str]:
    """The replicas' extra arguments for their file store (all share one data dir)."""
    assert request.param == "shared-dir"
    return []


@pytest.fixture
def machines() -> Iterator[list[str]]:
    """Two daemon directories: two machines, each with its own daemon."""
    dirs = [tempfile.mkdtemp(prefix=f"trkd-m{m}-") for m in range(MACHINES)]
    yield dirs
    for folder in dirs:
        try:
            os.kill(int((Path(folder) / "daemon.pid").read_text()), signal.SIGKILL)
        except (OSError, ValueError):
            pass


class Reader:
    """The read API through haproxy (msgpack: exact floats)."""

    def __init__(self, url: str, key: str) -> None:
        headers = {"Authorization": f"Bearer {key}", "Accept": "application/msgpack"}
        self.client = httpx.Client(base_url=url + "/api/v1", headers=headers, timeout=60)

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def _get(self, path: str) -> httpx.Response:
        """The answer, asking again (as the UI's next poll would) if a read was in flight on
        the replica that was killed (haproxy answers 502 for it)."""
        for _ in range(20):
            response = self.client.get(path)
            if response.status_code not in (502, 503):
                return response
            time.sleep(0.1)
        return response

    def get(self, path: str) -> Any:
        response = self._get(path)
        response.raise_for_status()
        return msgpack.unpackb(response.content, raw=False, strict_map_key=False)

    def run(self, index: int) -> dict[str, Any] | None:
        response = self._get(f"/runs/admin/{PROJECT}/scale-{index}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        doc: dict[str, Any] = msgpack.unpackb(response.content, raw=False, strict_map_key=False)
        return doc


def _last_step(reader: Reader, index: int) -> int:
    run = reader.run(index)
    return -1 if run is None or run["last_step"] is None else int(run["last_step"])


def _all_stored(reader: Reader) -> bool:
    runs = [reader.run(i) for i in range(PROCESSES)]
    return all(r is not None and r["state"] == "finished" for r in runs)


def _check_run(reader: Reader, index: int) -> None:
    run = reader.run(index)
    assert run is not None and run["state"] == "finished", run
    assert run["last_seq"] == RECORDS + 3  # RunStart, Metric, the rows, Finish
    assert run["summary"]["x"] == {"mean": (RECORDS - 1) / 2}
    rows = reader.get(f"/runs/admin/{PROJECT}/scale-{index}/history")
    assert [row["_step"] for row in rows] == list(range(RECORDS))
    assert all(row["x"] == row["_step"] and row["w"] == index for row in rows)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(600 if full_scale() else 180)
def test_replicas_behind_haproxy_lose_and_double_nothing_when_one_is_killed(
    tmp_path: Path, pg_cluster: PostgresCluster, file_store: list[str], machines: list[str]
) -> None:
    url = pg_cluster.fresh_url()
    with replicas(3, tmp_path / "files", url, file_store) as servers:
        with Haproxy(servers, tmp_path / "haproxy") as proxy:
            with Reader(proxy.url, servers[0].admin_key) as reader:
                procs = _start_training(proxy.url, servers[0].admin_key, machines, tmp_path)
                seen = _kill_one_mid_run(reader, servers)
                seen += _follow(reader)
                for proc in procs:
                    _out, err = proc.communicate(timeout=500 if full_scale() else 120)
                    assert proc.returncode == 0, err
                deadline = time.monotonic() + (400 if full_scale() else 60)
                while not _all_stored(reader):
                    assert time.monotonic() < deadline, "the runs did not all reach the server"
                    time.sleep(0.5)
                # live: run 0's progress, read through haproxy from whichever replica answers
                assert seen == sorted(seen) and seen[0] < seen[-1] == RECORDS - 1, seen
                for index in range(PROCESSES):
                    _check_run(reader, index)


def _start_training(
    url: str, key: str, machines: list[str], tmp_path: Path
) -> list[subprocess.Popen[str]]:
    env = {
        "TRACKD_BASE_URL": url,
        "TRACKD_API_KEY": key,
        "TRACKD_BATCH_SECONDS": "0.2",
        "N": str(RECORDS),
        "RATE": str(RATE),
    }
    procs = []
    for index in range(PROCESSES):
        machine = index % MACHINES
        env.update(
            INDEX=str(index),
            TRACKD_DAEMON_DIR=machines[machine],
            TRACKD_DIR=str(tmp_path / f"machine-{machine}"),
        )
        procs.append(start_script(TRAIN, tmp_path, env=env))
    return procs


def _follow(reader: Reader) -> list[int]:
    """Run 0's last step, read through haproxy until it holds the last one."""
    seen: list[int] = []
    deadline = time.monotonic() + (400 if full_scale() else 60)
    while not seen or seen[-1] < RECORDS - 1:
        assert time.monotonic() < deadline, f"run 0 stopped at step {seen[-1]}"
        seen.append(_last_step(reader, 0))
        time.sleep(0.1)
    return seen


def _kill_one_mid_run(reader: Reader, servers: list[Any]) -> list[int]:
    """Wait until run 0 is a fifth stored, ``kill -9`` replica 1 and start it again; returns
    run 0's last step as read through haproxy meanwhile."""
    seen: list[int] = []
    deadline = time.monotonic() + (300 if full_scale() else 60)
    while (step := _last_step(reader, 0)) < RECORDS // 5:
        assert time.monotonic() < deadline, f"run 0 reached only step {step}"
        if step >= 0:
            seen.append(step)
        time.sleep(0.05)
    seen.append(step)
    assert step < RECORDS - 1, "run 0 was stored before the kill; nothing was mid-run"
    servers[1].kill()
    killed = time.monotonic()
    for _ in range(10):  # reads go on through the other replicas while one is down
        seen.append(_last_step(reader, 0))
        time.sleep(0.05)
    time.sleep(max(0.0, killed + 1.0 - time.monotonic()))
    servers[1].start()
    seen.append(_last_step(reader, 0))
    return seen
