"""Losses and stalls found by reading the code, each reproduced for real: the real daemon,
a real server in a subprocess, and the ``trackd`` command."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import trackd
from trackd._wire import records as p

from tests._support.server import running_server
from tests.e2e.conftest import Remote


def _log(run: trackd.Run, start: int, stop: int) -> None:
    for i in range(start, stop):
        run.log({"i": i})


@pytest.mark.usefixtures("proxy")
def test_sync_of_a_run_still_logging_keeps_uploading_it(
    remote: Remote, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKD_FINISH_TIMEOUT", "20")
    run = trackd.init(project="p")
    _log(run, 0, 1_000)
    time.sleep(0.5)  # durable in the run log, so `trackd sync` sees these records
    result = subprocess.run(
        [sys.executable, "-m", "trackd", "sync", run.dir],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    _log(run, 1_000, 2_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # finish() must not warn that the upload is missing
        run.finish()
    assert [row["i"] for row in remote.history("p", run.id)] == list(range(2_000))
    doc = remote.run("p", run.id)
    assert doc is not None and doc["state"] == "finished"


@pytest.mark.usefixtures("proxy")
def test_run_metadata_set_after_init_reaches_the_server(remote: Remote) -> None:
    run = trackd.init(project="p", name="before", tags=["x"])
    run.log({"i": 0})
    run.name = "after"
    run.notes = "changed my mind"
    run.tags = ["y", "z"]
    run.group = "g2"
    run.finish()
    doc = remote.run("p", run.id)
    assert doc is not None
    assert (doc["name"], doc["notes"], doc["tags"]) == ("after", "changed my mind", ["y", "z"])
    assert doc["group"] == "g2"


def test_record_the_server_finds_too_large_is_named_and_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server with a 1 MiB body limit: one record of about 1.5 MiB (the client allows
    8 MiB) gets a permanent 413; the daemon records it as refused and uploads the rest."""
    with running_server(tmp_path / "server", args=["--max-body-mb", "1"]) as server:
        monkeypatch.setenv("TRACKD_BASE_URL", server.url)
        monkeypatch.setenv("TRACKD_API_KEY", server.admin_key)
        monkeypatch.setenv("TRACKD_BATCH_SECONDS", "0.2")
        run = trackd.init(project="p")
        _log(run, 0, 3)  # seqs 2-4
        run.log({f"text{k}": "x" * 500_000 for k in range(3)})  # seq 5
        _log(run, 4, 8)  # seqs 6-9
        with pytest.warns(UserWarning, match=r"refused 1 record\(s\).* seq 5: the server refused"):
            run.finish()  # the Finish record is seq 10
        with trackd.Api(host=server.url, api_key=server.admin_key) as api:
            remote = api.run(f"admin/p/{run.id}")
            rows = list(remote.scan_history())
        assert [row.get("i") for row in rows] == [0, 1, 2, 4, 5, 6, 7]
        assert remote.state == "finished" and remote.last_seq == 10
        status = subprocess.run(
            [sys.executable, "-m", "trackd", "status"],
            env=dict(os.environ),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "1 record(s) refused by the server" in status.stdout, status.stdout
        assert "seq 5: the server refused it as too large" in status.stdout


def test_batches_over_the_servers_body_limit_are_halved_until_they_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon's batches (up to 16 MiB here) are far larger than the server takes (1 MiB):
    each 413 halves the batch until it fits, and every row lands, with no upload ever
    taken for a connection failure (a reset is retried with the same batch: it never
    shrinks)."""
    with running_server(tmp_path / "server", args=["--max-body-mb", "1"]) as server:
        monkeypatch.setenv("TRACKD_BASE_URL", server.url)
        monkeypatch.setenv("TRACKD_API_KEY", server.admin_key)
        monkeypatch.setenv("TRACKD_BATCH_SECONDS", "2")  # the whole run waits for one batch
        monkeypatch.setenv("TRACKD_BATCH_BYTES", str(16 << 20))
        monkeypatch.setenv("TRACKD_FINISH_TIMEOUT", "120")
        run = trackd.init(project="p")
        rows = 500  # about 10 MB of text: one batch, ten times the server's limit
        for i in range(rows):
            run.log({"i": i, "text": f"{i:06d}" + "x" * 20_000})
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # nothing refused, nothing left behind
            run.finish()
        with trackd.Api(host=server.url, api_key=server.admin_key) as api:
            got = list(api.run(f"admin/p/{run.id}").scan_history())
        assert [row["i"] for row in got] == list(range(rows))
        assert all(row["text"] == f"{row['i']:06d}" + "x" * 20_000 for row in got)
        log = (Path(os.environ["TRACKD_DAEMON_DIR"]) / "daemon.log").read_text()
        assert "server unreachable" not in log  # never a reset in place of the 413


@pytest.mark.parametrize(
    "upstream", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
@pytest.mark.usefixtures("proxy")
def test_poison_record_is_refused_and_the_other_nine_land(remote: Remote) -> None:
    """The 5th of 10 records is one the server cannot store (this client refuses it at the
    call, so it is sent the way an older client would have sent it)."""
    run = trackd.init(project="p")  # RunStart: seq 1
    _log(run, 0, 3)  # seqs 2-4
    poison = p.History(p.HISTORY, run.id, run._next_seq(), 2**63, time.time(), {"i": -1})
    run._emit_record(poison)  # seq 5
    _log(run, 3, 7)  # seqs 6-9
    with pytest.warns(UserWarning, match=r"refused 1 record\(s\).*seq 5: .*9223372036854775808"):
        run.finish()  # seq 10
    assert [row["i"] for row in remote.history("p", run.id)] == list(range(7))
    doc = remote.run("p", run.id)
    assert doc is not None and doc["state"] == "finished" and doc["last_seq"] == 10
