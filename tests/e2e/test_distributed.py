"""Distributed training end to end: shared runs, ranks, forks. Real training processes
(``torch.distributed`` with gloo on CPU where it says so), real daemons, a real server in a
subprocess on SQLite and on PostgreSQL; everything is read back through the read API.

Sizes: ``N`` records per rank (2,000; 20,000 with ``TRACKD_SCALE=full``). The servers are
started once for the module (each test writes its own project): the shared-run test runs
on SQLite and on PostgreSQL, the torch and fork tests (whose server side is the same) on
SQLite, and on PostgreSQL too with ``TRACKD_SCALE=full``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trackd

from tests._support.postgres import PostgresCluster
from tests._support.procs import start_script, wait_for
from tests._support.server import ServerProcess, free_port, running_server
from tests.e2e.conftest import Remote

FULL = os.environ.get("TRACKD_SCALE") == "full"
N = 20_000 if FULL else 2_000
POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)
BOTH_DATABASES = pytest.mark.parametrize("db", ["sqlite", POSTGRES])
DATABASES = pytest.mark.parametrize("db", ["sqlite", POSTGRES] if FULL else ["sqlite"])


# a writer silent this long reads crashed; live ones beat every 0.3 s (see _online)
HEARTBEAT = ["--heartbeat-timeout", "4"]


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("sqlite") / "server", args=HEARTBEAT) as server:
        yield server


@pytest.fixture(scope="module")
def postgres_server(
    pg_cluster: PostgresCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    url = pg_cluster.fresh_url()
    with running_server(tmp_path_factory.mktemp("pg") / "server", db=url, args=HEARTBEAT) as server:
        yield server


@pytest.fixture
def upstream(db: str, request: pytest.FixtureRequest) -> ServerProcess:
    """The module's server on the database the test is parametrized with."""
    server: ServerProcess = request.getfixturevalue(f"{db}_server")
    return server


def _online(monkeypatch: pytest.MonkeyPatch, server: ServerProcess) -> None:
    monkeypatch.setenv("TRACKD_BASE_URL", server.url)
    monkeypatch.setenv("TRACKD_API_KEY", server.admin_key)
    monkeypatch.setenv("TRACKD_BATCH_SECONDS", "0.2")
    monkeypatch.setenv("TRACKD_HEARTBEAT_INTERVAL", "0.3")


def _done(proc: subprocess.Popen[str], timeout: float = 120) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err}"
    return out


def _series(remote: Remote, project: str, run_id: str, key: str) -> dict[int, Any]:
    rows = remote.get(f"/runs/admin/{project}/{run_id}/history?keys={key}")
    return {row["_step"]: row[key] for row in rows if key in row}


def _writers(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {w["label"]: w for w in doc["writers"]}


WRITER = """
import sys, time, trackd
label, primary, n = {label!r}, {primary!r}, {n}
run = trackd.init(project="shared", id="job1", writer=label, primary=primary,
                  config={{label: True}})
base = int(label.split("-")[1]) * 10_000_000
for i in range(n):
    run.log({{label + "/x": base + i, "all/i": i}})
if {crash!r}:
    assert run._transport.wait_durable(run._stream, run._seq, 30)  # all of it at the daemon
    print("logged", flush=True)
    time.sleep(3600)  # until killed
run.summary[label] = "done"
trackd.finish()
"""


REJOIN = """
import os, trackd
from trackd._wire import records as p
from trackd._wire.runlog import scan
run = trackd.init(project="shared", id="job1", writer="rank-1")
run.log({"rank-1/again": 1})
trackd.finish()
seqs = [p.decode(x).seq for x in scan(os.path.join(run.dir, "run.trackd")).payloads]
print(seqs[0], seqs[-1], run.step - 1)
"""

SAME_LABEL = """
import trackd
from trackd.errors import UsageError
try:
    trackd.init(project="shared", id="job1", writer="rank-2")
except UsageError as exc:
    print("refused:", exc)
"""


@BOTH_DATABASES
def test_a_shared_run_from_three_processes_and_two_daemons(
    upstream: ServerProcess, remote: Remote, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """rank-0 (primary) and rank-2 write through one daemon, rank-1 through another daemon
    (another daemon directory: another machine); rank-2 is killed with kill -9 once its
    records are at the daemon. Each writer's records read back exactly; rank-2 reads as
    crashed, the run as finished (its primary finished). A fourth process that takes
    rank-2's label while rank-2 lives is refused."""
    _online(monkeypatch, upstream)
    other_daemon = tempfile.mkdtemp(prefix="trkd-b-")
    try:
        killed = start_script(
            WRITER.format(label="rank-2", primary=False, n=N, crash=True), tmp_path
        )
        assert killed.stdout is not None and killed.stdout.readline().strip() == "logged"
        same_label = start_script(SAME_LABEL, tmp_path)
        second = start_script(
            WRITER.format(label="rank-1", primary=False, n=N, crash=False),
            tmp_path,
            {"TRACKD_DAEMON_DIR": other_daemon},
        )
        first = start_script(
            WRITER.format(label="rank-0", primary=True, n=N, crash=False), tmp_path
        )
        out = _done(same_label)  # while rank-2 lives
        assert "refused:" in out and "being written by another live process" in out
        os.kill(killed.pid, signal.SIGKILL)
        killed.communicate(timeout=10)
        _done(first)
        _done(second)

        def crashed() -> dict[str, Any] | None:
            doc = remote.run("shared", "job1")
            ended = doc is not None and _writers(doc).get("rank-2", {}).get("state") == "crashed"
            return doc if ended else None

        doc = wait_for(crashed, 30, "rank-2 to read as crashed")
        # rank-1 starts again on a third "machine": it continues its own seqs and steps
        third_daemon = tempfile.mkdtemp(prefix="trkd-c-")
        again = start_script(REJOIN, tmp_path, {"TRACKD_DAEMON_DIR": third_daemon})
        # its new log's seqs follow the N + 3 the server holds (RunStart, N rows, Summary,
        # Finish), its steps the N it logged
        first_seq, last_seq, step = map(int, _done(again).split())
        assert (first_seq, step) == (N + 4, N)
        _kill_daemon(third_daemon)
    finally:
        _kill_daemon(other_daemon)
    assert doc["state"] == "finished"
    writers = _writers(doc)
    assert {w: writers[w]["state"] for w in writers} == {
        "rank-0": "finished",
        "rank-1": "finished",
        "rank-2": "crashed",
    }
    assert writers["rank-0"]["primary"] and not writers["rank-1"]["primary"]
    assert doc["config"] == {"rank-0": True, "rank-1": True, "rank-2": True}
    assert doc["summary"]["rank-0"] == "done" and doc["summary"]["rank-1"] == "done"
    for rank in range(3):
        base = rank * 10_000_000
        assert _series(remote, "shared", "job1", f"rank-{rank}/x") == {
            i: base + i for i in range(N)
        }
    assert _series(remote, "shared", "job1", "all/i") == {i: i for i in range(N)}
    doc = remote.run("shared", "job1")
    assert doc is not None and _writers(doc)["rank-1"]["last_seq"] == last_seq
    assert _series(remote, "shared", "job1", "rank-1/again") == {N: 1}
    assert _series(remote, "shared", "job1", "rank-1/x")[N - 1] == 10_000_000 + N - 1


def _kill_daemon(path: str) -> None:
    try:
        os.kill(int((Path(path) / "daemon.pid").read_text()), signal.SIGKILL)
    except (OSError, ValueError):
        pass


RANK = """
import json, os, sys
import torch.distributed as dist
import trackd

dist.init_process_group("gloo")
rank, n = dist.get_rank(), {n}
ids = {{}}
for organise in ("shared", "group", "rank0"):
    run = trackd.init_distributed(organise, project="dist", config={{"organise": organise}})
    ids[organise] = run.id
    key = "rank-%d/x" % rank if organise == "shared" else "x"
    for i in range(n):
        run.log({{key: rank * 1_000_000 + i}})
    run.finish()
    dist.barrier()
print(json.dumps({{"rank": rank, "ids": ids}}), flush=True)
dist.destroy_process_group()
"""


def _torch_ranks(tmp_path: Path, code: str, world: int) -> list[dict[str, Any]]:
    port = str(free_port())
    procs = []
    for rank in range(world):
        env = {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world)}
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
        procs.append(start_script(code, tmp_path, env))
    return [json.loads(_done(proc, 240).strip().splitlines()[-1]) for proc in procs]


@pytest.mark.timeout(300)
@pytest.mark.slow
@DATABASES
def test_torch_distributed_four_ranks_in_every_organisation(
    upstream: ServerProcess, remote: Remote, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """4 gloo ranks, each logging N records: into one shared run (one writer per rank, the
    run id broadcast from rank 0), into a run per rank tied by group and job type, and
    from rank 0 only (the other ranks' runs are disabled: nothing of theirs lands)."""
    _online(monkeypatch, upstream)
    world = 4
    results = sorted(_torch_ranks(tmp_path, RANK.format(n=N), world), key=lambda r: r["rank"])
    shared = {r["ids"]["shared"] for r in results}
    assert len(shared) == 1  # every rank got rank 0's id
    shared_id = shared.pop()
    doc = remote.run("dist", shared_id)
    assert doc is not None and doc["state"] == "finished"
    assert {w["label"]: w["state"] for w in doc["writers"]} == {
        f"rank-{r}": "finished" for r in range(world)
    }
    for r in range(world):
        expect = {i: r * 1_000_000 + i for i in range(N)}
        assert _series(remote, "dist", shared_id, f"rank-{r}/x") == expect
        group_run = results[r]["ids"]["group"]
        group_doc = remote.run("dist", group_run)
        assert group_doc is not None and group_doc["state"] == "finished"
        assert group_doc["job_type"] == f"rank-{r}" and group_doc["writers"] == []
        assert group_run == f"{group_doc['group']}-rank-{r}"
        assert group_doc["group"] == results[0]["ids"]["group"].rsplit("-rank-", 1)[0]
        assert _series(remote, "dist", group_run, "x") == expect
    only = results[0]["ids"]["rank0"]
    assert _series(remote, "dist", only, "x") == {i: i for i in range(N)}
    listed = remote.get("/entities/admin/projects/dist/runs")["runs"]
    assert len(listed) == 1 + world + 1  # disabled ranks created nothing
    assert all(remote.run("dist", r["ids"]["rank0"]) is None for r in results[1:])


FORKS = """
import multiprocessing as mp, sys
import trackd
from trackd.errors import UsageError

N = {n}

class Rows:  # a map-style dataset; torch is imported by the parent only (spawn is quicker)
    def __len__(self):
        return 64

    def __getitem__(self, i):
        try:
            trackd.log({{"worker/x": i}})  # the parent's run: refused in a forked worker
        except UsageError:
            return [i, 1]
        return [i, 0]

def child(label):
    run = trackd.init(project="forks", id="fk", writer=label)
    for i in range(N):
        run.log({{label + "/x": i}})
    trackd.finish()

if __name__ == "__main__":
    import torch
    from torch.utils.data import DataLoader
    run = trackd.init(project="forks", id="fk", writer="main", primary=True)
    refused = seen = 0
    for epoch in range(2):
        loader = DataLoader(Rows(), batch_size=8, num_workers=2, multiprocessing_context="fork")
        for batch in loader:
            for i, was_refused in torch.stack(batch, 1).tolist():
                refused += was_refused
                seen += 1
                run.log({{"main/x": epoch * 64 + i}})
    for method in ("fork", "spawn"):
        proc = mp.get_context(method).Process(target=child, args=(method,))
        proc.start()
        proc.join(120)
        assert proc.exitcode == 0, (method, proc.exitcode)
    for i in range(N):
        run.log({{"main/y": i}})
    trackd.finish()
    print(refused, seen, flush=True)
"""


@pytest.mark.timeout(240)
@pytest.mark.slow
@DATABASES
def test_forking_dataloader_and_multiprocessing_children(
    upstream: ServerProcess, remote: Remote, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A DataLoader with 2 forking workers (twice) never writes into its parent's stream
    (each worker's log() is refused), and children started with fork and with spawn each
    write the shared run as their own writer: every stream reads back exactly."""
    _online(monkeypatch, upstream)
    out = _done(start_script(FORKS.format(n=N), tmp_path), 200)
    refused, seen = map(int, out.split())
    assert (refused, seen) == (128, 128)
    doc = remote.run("forks", "fk")
    assert doc is not None and doc["state"] == "finished"
    assert {w["label"]: w["state"] for w in doc["writers"]} == {
        "main": "finished",
        "fork": "finished",
        "spawn": "finished",
    }
    main_x = _series(remote, "forks", "fk", "main/x")
    assert sorted(main_x.values()) == sorted(e * 64 + i for e in range(2) for i in range(64))
    assert _series(remote, "forks", "fk", "main/y") == {128 + i: i for i in range(N)}
    for label in ("fork", "spawn"):
        assert _series(remote, "forks", "fk", f"{label}/x") == {i: i for i in range(N)}
    assert _series(remote, "forks", "fk", "worker/x") == {}


@DATABASES
def test_trackd_sync_uploads_each_offline_writer_of_a_shared_run(
    upstream: ServerProcess, remote: Remote, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Offline writers of one run, then ``trackd sync``: each log lands as its own writer
    (the daemon reads the label from the log), each exactly once, twice synced."""
    for rank in range(2):
        run = trackd.init(project="offsync", id="off1", writer=f"rank-{rank}", primary=rank == 0)
        for i in range(500):
            run.log({f"rank-{rank}/x": i * (rank + 1)})
        run.finish()
    _online(monkeypatch, upstream)
    for _ in range(2):  # a second sync finds nothing to do and doubles nothing
        result = subprocess.run(
            [sys.executable, "-m", "trackd", "sync"], capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
    doc = remote.run("offsync", "off1")
    assert doc is not None and doc["state"] == "finished"
    assert {w["label"]: (w["state"], w["last_seq"]) for w in doc["writers"]} == {
        "rank-0": ("finished", 502),
        "rank-1": ("finished", 502),
    }
    for rank in range(2):
        got = _series(remote, "offsync", "off1", f"rank-{rank}/x")
        assert got == {i: i * (rank + 1) for i in range(500)}


LOST = """
import trackd
label, primary, n = {label!r}, {primary!r}, {n}
run = trackd.init(project="lost", id="job2", writer=label, primary=primary)
for i in range(n):
    run.log({{label + "/x": i}})
if label == "rank-2":  # its machine is lost once all of it is at the daemon
    assert run._transport.wait_durable(run._stream, run._seq, 30)
    print(run._seq, flush=True)
    import time; time.sleep(3600)
input()  # the others finish when told
trackd.finish()
"""


@pytest.mark.timeout(120)
@BOTH_DATABASES
def test_a_writer_lost_with_its_machine_reads_crashed(
    upstream: ServerProcess, remote: Remote, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """rank-2 (a secondary, on a "machine" of its own: its own daemon) is killed with
    kill -9 together with its daemon once the server holds all it logged, so no Finish ever
    comes: the server's reaper finds its heartbeats stopped and it reads crashed while
    rank-0 (the primary) and rank-1 go on; they finish, and the run is finished. Each
    writer's records read back exactly once."""
    _online(monkeypatch, upstream)
    lost_daemon = tempfile.mkdtemp(prefix="trkd-l-")
    lost = start_script(
        LOST.format(label="rank-2", primary=False, n=N),
        tmp_path,
        {"TRACKD_DAEMON_DIR": lost_daemon},
    )
    others = [
        start_script(LOST.format(label=f"rank-{r}", primary=r == 0, n=N), tmp_path, stdin=-1)
        for r in (0, 1)
    ]
    try:
        assert lost.stdout is not None
        last_seq = int(lost.stdout.readline())

        def lost_seq() -> bool:
            doc = remote.run("lost", "job2")
            seq = 0 if doc is None else _writers(doc).get("rank-2", {}).get("last_seq", 0)
            return int(seq) >= last_seq  # then its print(), stored as console output

        wait_for(lost_seq, 30, "rank-2's records at the server")
        _kill_daemon(lost_daemon)  # the machine goes: its daemon, then the process
        lost.kill()
        lost.communicate(timeout=10)

        def reaped() -> dict[str, Any] | None:
            doc = remote.run("lost", "job2")
            writers = {} if doc is None else _writers(doc)
            gone = writers.get("rank-2", {}).get("state") == "crashed"
            return doc if gone else None

        doc = wait_for(reaped, 30, "rank-2 to read as crashed")
        assert doc["state"] == "running"  # the primary runs on
        assert {w: v["state"] for w, v in _writers(doc).items()} == {
            "rank-0": "running",
            "rank-1": "running",
            "rank-2": "crashed",
        }
        for proc in others:
            proc.communicate("\n", timeout=60)
            assert proc.returncode == 0
        doc = remote.run("lost", "job2")
        for r in range(3):
            assert _series(remote, "lost", "job2", f"rank-{r}/x") == {i: i for i in range(N)}
    finally:
        _kill_daemon(lost_daemon)
        shutil.rmtree(lost_daemon, ignore_errors=True)
        for proc in [lost, *others]:
            if proc.returncode is None:
                proc.kill()
                proc.communicate(timeout=10)
    assert doc is not None and doc["state"] == "finished"
    assert {w: v["state"] for w, v in _writers(doc).items()} == {
        "rank-0": "finished",
        "rank-1": "finished",
        "rank-2": "crashed",
    }


SAMPLED = """
import time, trackd
from trackd._reader import read_records
from trackd._wire import records as p
label = {label!r}
block = b"1" * ({mib} << 20)  # this writer's own resident memory, before any sample
run = trackd.init(project="sys", id="job3", writer=label, primary=label == "rank-0")
deadline = time.monotonic() + 60
while sum(r.kind == p.SYSTEM_STATS for r in read_records(run.dir)[0]) < 4:
    assert time.monotonic() < deadline, "no system samples"
    run.log({{label + "/x": 1}})
    time.sleep(0.1)
input()  # both have their samples: finish when told
trackd.finish()
"""


@DATABASES
def test_each_writer_has_its_own_process_metrics(
    upstream: ServerProcess, remote: Remote, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Two writers of one shared run on one daemon, sampled every 0.2 s: each one's process
    tree lands under its own keys (``system/rank-1/proc...``), never in one series; the
    machine-wide keys come once per sampling round (from one writer), not once per writer."""
    _online(monkeypatch, upstream)
    monkeypatch.setenv("TRACKD_SYSTEM_INTERVAL", "0.2")
    mib = {"rank-0": 40, "rank-1": 160}
    procs = {
        label: start_script(SAMPLED.format(label=label, mib=size), tmp_path, stdin=-1)
        for label, size in mib.items()
    }
    for proc in procs.values():
        proc.communicate("\n", timeout=90)
        assert proc.returncode == 0
    doc = remote.run("sys", "job3")
    assert doc is not None and doc["state"] == "finished"
    keys = set(doc["system_keys"])
    assert {f"system/{label}/proc.memory.rss_mb" for label in mib} <= keys
    assert "system/proc.memory.rss_mb" not in keys and "system/cpu.percent" in keys
    assert not [
        k for k in keys if "proc." in k and not k.startswith(("system/rank-0/", "system/rank-1/"))
    ]
    local = _local_samples(tmp_path / "runs")
    rss = {}
    for label in mib:
        key = f"system/{label}/proc.memory.rss_mb"
        rows = remote.get(f"/runs/admin/sys/job3/history?keys={key}")
        rss[label] = [r[key] for r in rows if key in r]
        assert rss[label] == [d[key] for _t, d in local[label] if key in d]
        assert len(rss[label]) >= 4 and min(rss[label]) > mib[label]
    assert min(rss["rank-1"]) > max(rss["rank-0"]) + 60  # each its own process: no mixing
    machine = [
        t for samples in local.values() for t, data in samples if "system/cpu.percent" in data
    ]
    assert len(machine) == len(set(machine))  # one writer of the run per round measures it
    rows = remote.get("/runs/admin/sys/job3/history?keys=system/cpu.percent")
    assert len([r for r in rows if "system/cpu.percent" in r]) == len(machine)


def _local_samples(runs_dir: Path) -> dict[str, list[tuple[float, dict[str, float]]]]:
    """Each writer's SystemStats (time, data), read from its run log on this machine."""
    from trackd._reader import read_records
    from trackd._wire import records as p

    out: dict[str, list[tuple[float, dict[str, float]]]] = {}
    for run_dir in runs_dir.glob("run-*-job3@*"):
        label = run_dir.name.rsplit("@", 1)[1]
        records, _torn = read_records(str(run_dir))
        out[label] = [(r.time, r.data) for r in records if r.kind == p.SYSTEM_STATS]
    return out


SPAWNED = """
import sys
import torch.distributed as dist
import torch.multiprocessing as mp
import trackd

def rank_main(rank, world, port, n):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{{port}}",
                            rank=rank, world_size=world)
    run = trackd.init_distributed("shared", project="spawned", id="sp1")
    for i in range(n):
        run.log({{run.writer + "/x": rank * 1_000_000 + i}})
    run.finish()
    dist.destroy_process_group()

if __name__ == "__main__":
    mp.spawn(rank_main, args=(2, {port}, {n}), nprocs=2, join=True)
    print("done", flush=True)
"""


@pytest.mark.timeout(240)
@pytest.mark.slow
@pytest.mark.skipif(not FULL, reason="three torch imports (~30 s here); TRACKD_SCALE=full")
@DATABASES
def test_torch_multiprocessing_spawn_writes_one_shared_run(
    upstream: ServerProcess, remote: Remote, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Ranks started by ``torch.multiprocessing.spawn`` (the rank is an argument, not in the
    environment: ``init_distributed`` takes it from the process group) each write the
    shared run as their own writer; every record reads back exactly once."""
    _online(monkeypatch, upstream)
    n = N // 10  # spawn is what it is about, not volume
    code = SPAWNED.format(port=free_port(), n=n)
    assert _done(start_script(code, tmp_path), 200).strip() == "done"
    doc = remote.run("spawned", "sp1")
    assert doc is not None and doc["state"] == "finished"
    assert {w["label"]: (w["state"], w["primary"]) for w in doc["writers"]} == {
        "rank-0": ("finished", True),
        "rank-1": ("finished", False),
    }
    for r in range(2):
        expect = {i: r * 1_000_000 + i for i in range(n)}
        assert _series(remote, "spawned", "sp1", f"rank-{r}/x") == expect
