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

Each process also logs ``IMAGES`` small images and saves one file, so blobs and run files go
through the replicas into ``file_store``: one directory shared by all replicas, or a bucket of
moto's S3 server (an emulator); they are read back through haproxy, byte for byte.
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

from tests._support.media import decode_png
from tests._support.objstore import LocalStore, S3Store
from tests._support.postgres import PostgresCluster
from tests._support.procs import start_script
from tests._support.replicas import Haproxy, replicas
from tests._support.scale import full_scale, scaled

PROCESSES, MACHINES = 8, 2
RECORDS = scaled(3000, 50_000)
RATE = 0 if full_scale() else 1000  # records/s per process (0: as fast as it can)
PROJECT = "scale"

IMAGES = 4  # per run, at steps 0, n/4, n/2, 3n/4: blobs through the replicas' file store
TRAIN = """
import os, time
import numpy as np
import trackd

n, index, rate = int(os.environ["N"]), int(os.environ["INDEX"]), float(os.environ["RATE"])
every = n // int(os.environ["IMAGES"])
run = trackd.init(project="scale", id=f"scale-{index}")
run.define_metric("x", summary="mean")
with open(f"notes-{index}.txt", "w") as f:
    f.write(f"notes of run {index}")
trackd.save(f"notes-{index}.txt", policy="now")
t0 = time.monotonic()
for step in range(n):
    row = {"x": float(step), "w": index}
    if step % every == 0:
        row["img"] = trackd.Image(np.full((8, 8, 3), 100 + index * 16 + step // every, np.uint8))
    run.log(row)
    if rate and step % 50 == 0:
        time.sleep(max(0.0, t0 + step / rate - time.monotonic()))
run.finish()
"""


@pytest.fixture(params=["shared-dir", "s3"])
def file_store(request: pytest.FixtureRequest, tmp_path: Path) -> LocalStore | S3Store:
    """The replicas' file store: one directory all of them share, or one bucket of moto's
    S3 server (an emulator, see tests/_support/objstore.py)."""
    if request.param == "s3":
        return S3Store(request.getfixturevalue("moto"))
    return LocalStore(tmp_path / "shared-files")


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

    def raw(self, url: str) -> bytes:
        """The bytes at a file or blob ``url`` (absolute path on the server, or API path)."""
        response = self._get(url.removeprefix("/api/v1"))
        response.raise_for_status()
        return response.content

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
    assert run["last_seq"] == RECORDS + 4  # RunStart, Metric, the saved file, the rows, Finish
    assert run["summary"]["x"] == {"mean": (RECORDS - 1) / 2}
    rows = reader.get(f"/runs/admin/{PROJECT}/scale-{index}/history")
    assert [row["_step"] for row in rows] == list(range(RECORDS))
    assert all(row["x"] == row["_step"] and row["w"] == index for row in rows)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(600 if full_scale() else 180)
def test_replicas_behind_haproxy_lose_and_double_nothing_when_one_is_killed(
    tmp_path: Path,
    pg_cluster: PostgresCluster,
    file_store: LocalStore | S3Store,
    machines: list[str],
) -> None:
    url = pg_cluster.fresh_url()
    with replicas(3, tmp_path / "files", url, file_store.args, file_store.env) as servers:
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
                    _check_files(reader, index)
                assert len(file_store.objects()) == PROCESSES * (IMAGES + 1)


def _check_files(reader: Reader, index: int) -> None:
    """The run's images and saved file, read back through haproxy from the shared store."""
    path = f"/runs/admin/{PROJECT}/scale-{index}"
    media = reader.get(f"{path}/media?keys=img")["media"]["img"]
    every = RECORDS // IMAGES
    assert [m["step"] for m in media] == [k * every for k in range(IMAGES)]
    for k, m in enumerate(media):
        pixels = decode_png(reader.raw(m["value"]["url"]))
        assert pixels.shape == (8, 8, 3) and (pixels == 100 + index * 16 + k).all()
    assert reader.raw(f"{path}/files/notes-{index}.txt") == f"notes of run {index}".encode()


def _start_training(
    url: str, key: str, machines: list[str], tmp_path: Path
) -> list[subprocess.Popen[str]]:
    env = {
        "TRACKD_BASE_URL": url,
        "TRACKD_API_KEY": key,
        "TRACKD_BATCH_SECONDS": "0.2",
        "N": str(RECORDS),
        "RATE": str(RATE),
        "IMAGES": str(IMAGES),
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
