"""Rich values that need no daemon work (histograms, arrays, lists, tables of plain cells,
watch() histograms) travel in plain History rows: online, they read back from the server's
read API exactly as logged, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import trackd

from .conftest import Remote

torch = pytest.importorskip("torch")


@pytest.mark.parametrize(
    "upstream", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_histograms_lists_tables_and_watch_read_back_from_the_server(
    upstream: Any, remote: Remote, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKD_BASE_URL", upstream.url)
    monkeypatch.setenv("TRACKD_API_KEY", upstream.admin_key)
    monkeypatch.setenv("TRACKD_BATCH_SECONDS", "0.2")
    values = np.random.default_rng(5).normal(size=500)
    values[:3] = [math.nan, math.inf, -math.inf]
    model = torch.nn.Linear(4, 2)
    run = trackd.init(project="rich")
    trackd.watch(model, log="all", log_freq=2)
    for step in range(4):
        model(torch.randn(3, 4)).sum().backward()
        run.log(
            {
                "hist": trackd.Histogram(values, num_bins=16),
                "arr": np.arange(40.0),
                "small": np.arange(3),
                "list": [0.5, 1, True],
                "table": trackd.Table(columns=["a", "b"], data=[[step, "x"], [None, 1.5]]),
            }
        )
    run.finish()
    rows = remote.history("rich", run.id)
    local = trackd.read_run(run.dir).history
    assert len(rows) == 4
    for got, sent in zip(rows, local, strict=True):
        for key in ("hist", "arr", "small", "list", "table"):
            assert got[key] == sent[key], key
    hist = rows[0]["hist"]
    assert (hist["nan"], hist["inf"], hist["-inf"]) == (1, 1, 1) and sum(hist["values"]) == 497
    assert rows[0]["small"] == [0, 1, 2] and rows[3]["table"]["data"][0] == [3, "x"]
    assert rows[1]["gradients/weight"] == local[1]["gradients/weight"]
    assert sum(rows[3]["parameters/weight"]["values"]) == 8
    assert "gradients/weight" not in rows[0]
