"""Losses and stalls found by reading the code, each reproduced for real: the real daemon,
a real server in a subprocess, and the ``trackd`` command."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings

import pytest
import trackd

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
