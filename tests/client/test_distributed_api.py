"""The API of shared runs and ranks: init(writer=, primary=), init_distributed, rank_info.

The offline cases go through the real daemon and read each writer's run log back."""

from __future__ import annotations

from pathlib import Path

import pytest
import trackd
from trackd._wire import records as p
from trackd._wire.runlog import scan
from trackd.errors import UsageError


def test_writer_labels_and_the_primary_rule() -> None:
    with pytest.raises(UsageError, match=r"writer 'rank 3' is not a writer label"):
        trackd.init(id="j", writer="rank 3", mode="offline")
    with pytest.raises(UsageError, match="primary=False needs a writer label"):
        trackd.init(id="j", primary=False, mode="offline")
    with pytest.raises(UsageError, match="needs its id"):
        trackd.init(writer="rank-1", mode="offline")
    with pytest.raises(UsageError, match="primary must be True, False or None"):
        trackd.init(id="j", writer="rank-1", primary="yes", mode="offline")  # type: ignore[arg-type]


def _run_start(run_dir: str) -> p.RunStart:
    first = p.decode(scan(Path(run_dir) / "run.trackd").payloads[0])
    assert isinstance(first, p.RunStart)
    return first


def test_offline_writers_of_one_run_each_keep_their_own_log(tmp_path: Path) -> None:
    a = trackd.init(id="job", writer="rank-0", primary=True, mode="offline")
    for i in range(50):
        a.log({"rank-0/x": i})
    a.finish()
    b = trackd.init(id="job", writer="rank-1", mode="offline")
    for i in range(30):
        b.log({"rank-1/x": -i})
    b.finish()
    assert Path(a.dir).name.endswith("-job@rank-0") and Path(b.dir).name.endswith("-job@rank-1")
    assert (a.writer, a.primary, b.writer, b.primary) == ("rank-0", True, "rank-1", False)
    start_a, start_b = _run_start(a.dir), _run_start(b.dir)
    assert (start_a.writer, start_a.primary, start_a.seq) == ("rank-0", True, 1)
    assert (start_b.writer, start_b.primary, start_b.seq) == ("rank-1", False, 1)
    assert [r["rank-0/x"] for r in trackd.read_run(a.dir).history] == list(range(50))
    assert [r["rank-1/x"] for r in trackd.read_run(b.dir).history] == [-i for i in range(30)]
    again = trackd.init(id="job", writer="rank-1", mode="offline")  # continues its own log
    assert again.dir == b.dir and again.step == 30
    again.log({"rank-1/x": -30})
    again.finish()
    # RunStart, 30 rows, Finish; then RunStart, a row, Finish
    assert trackd.read_run(b.dir).last_seq == 35


def test_rank_info_and_rank0(monkeypatch: pytest.MonkeyPatch) -> None:
    assert trackd.rank_info() == trackd.RankInfo(0, 0, 1)
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "4")
    me = trackd.rank_info()
    assert (me.rank, me.local_rank, me.world_size, me.label) == (3, 1, 4, "rank-3")
    run = trackd.init_distributed("rank0", project="p", mode="offline")
    assert run.mode == "disabled"
    run.log({"x": 1})  # does nothing, raises nothing
    run.finish()
    with pytest.raises(UsageError, match="must agree on a run id"):
        trackd.init_distributed("shared", project="p", mode="offline")
    with pytest.raises(UsageError, match="writer= is set from the rank"):
        trackd.init_distributed("shared", id="j", writer="x", mode="offline")
    with pytest.raises(UsageError, match="organise='every' is not one of"):
        trackd.init_distributed("every")
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(UsageError, match="RANK='x' is not an integer"):
        trackd.rank_info()


def test_shared_and_group_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("TRACKD_RUN_ID", "job7")
    shared = trackd.init_distributed("shared", project="p", mode="offline")
    assert (shared.id, shared.writer, shared.primary) == ("job7", "rank-2", False)
    shared.finish()
    group = trackd.init_distributed("group", project="p", mode="offline")
    assert (group.id, group.group, group.job_type, group.writer) == (
        "job7-rank-2",
        "job7",
        "rank-2",
        "",
    )
    group.finish()
