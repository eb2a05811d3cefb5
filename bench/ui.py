"""The web UI's time to first chart (and to the runs table) in headless Chromium, as JSON.

Starts a real server (SQLite, temp dir), fills it, then opens each view in a fresh page
(signed in through sessionStorage before the page loads) and reads the times the page itself
records: ``window.trackd.firstChartAt`` (the first chart drawn) and ``runsTableAt`` (the
runs table shown), in ms from the start of navigation. Each view is opened ``--repeat``
times; the median and every figure are printed.

- ``one_run_1m_steps``: a run page, one metric of ``--steps`` steps (logged through the daemon);
- ``20_runs_x_10_keys``: a project page with 20 runs of 10 metrics x ``--many-steps`` steps
  (logged through the daemon) all selected;
- ``runs_table_10k``: the runs table of a project of ``--table-runs`` runs (posted to the
  ingest API directly: through the daemon it would take half an hour).

The page reads history through the bulk endpoint (``POST .../projects/{p}/history``, columnar
msgpack), one request per group of panels on screen, and asks the server for one page of
runs. For each view the page's own profile of the last opening is printed too (``profile``:
ms of the history request and its decoding, of each panel's draw; from the page's
``performance.measure`` entries), and the server's share is measured apart (``server_*``).
Usage: ``python bench/ui.py [--steps 1000000]``. Target: under 1 s each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# the launcher, the logger and the batch builder the tests use
from tests._support.server import ServerProcess, running_server  # noqa: E402
from tests.server import _batches  # noqa: E402
from tests.web._logging import finish_logging, log_runs  # noqa: E402
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402


def fill_table(server: ServerProcess, runs: int) -> None:
    with server.client() as client:
        for r in range(runs):
            run_id = f"t{r:05d}"
            records = [
                _batches.run_start(run_id, 1, "table", name=run_id, config={"lr": 1 / (r + 1)}),
                _batches.history(run_id, 2, 0, {"loss": 1 / (r + 1)}),
                _batches.finish(run_id, 3),
            ]
            answer = _batches.ingest(client, run_id, records, project="table")
            assert answer.status_code == 200, answer.text


def measure(
    browser: Any, server: ServerProcess, view: str, marker: str, repeat: int
) -> dict[str, Any]:
    times = []
    for _ in range(repeat):
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.add_init_script(
            f"sessionStorage.setItem('trackd.apiKey', {json.dumps(server.admin_key)})"
        )
        page = context.new_page()
        page.goto(server.url + "/" + view)
        page.wait_for_function(
            f"() => window.trackd && window.trackd.{marker} !== null", timeout=120_000
        )
        times.append(round(page.evaluate(f"() => window.trackd.{marker}"), 1))
        profile = page.evaluate(PROFILE)
        context.close()
    return {"view": view, "ms_median": statistics.median(times), "ms": times, "profile": profile}


# the page's own marks: what each request, decoding and panel draw took (ms), in order
PROFILE = """() => performance.getEntriesByType('measure')
  .filter(m => m.name.startsWith('trackd:'))
  .slice(0, 12)
  .map(m => `${m.name.slice(7)} at ${Math.round(m.startTime)}: ${Math.round(m.duration)}`)"""


def server_share(server: ServerProcess, steps: int) -> dict[str, float]:
    """The server's part: the bulk history answers the first charts wait for, and a page
    of the 10,000-run list, timed over HTTP from here."""
    columns = {"Accept": "application/vnd.trackd.columns+msgpack"}
    asks = {
        "server_history_1m_samples_1000_ms": (
            "long",
            {"runs": [f"long{steps}"], "keys": ["loss"], "samples": 1000},
        ),
        "server_history_20_runs_x_3_keys_ms": (
            "many",
            {"runs": [f"many{r}" for r in range(20)], "keys": ["m/k0", "m/k1", "m/k2"]},
        ),
    }
    out: dict[str, float] = {}
    with server.client() as client:
        for name, (project, body) in asks.items():
            t = time.perf_counter()
            answer = client.post(
                f"/entities/admin/projects/{project}/history", json=body, headers=columns
            )
            answer.raise_for_status()
            out[name] = round((time.perf_counter() - t) * 1000, 1)
        t = time.perf_counter()
        client.get(
            "/entities/admin/projects/table/runs", params={"order": "-created_at", "limit": 50}
        ).raise_for_status()
        out["server_runs_page_10k_ms"] = round((time.perf_counter() - t) * 1000, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--many-steps", type=int, default=10_000)
    parser.add_argument("--table-runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {"browser": CHROMIUM}
    with (
        tempfile.TemporaryDirectory(prefix="trku-") as tmp,
        running_server(Path(tmp) / "server") as server,
    ):
        started = time.perf_counter()
        finish_logging(
            log_runs(server, server.admin_key, Path(tmp), "long", str(args.steps)), timeout=1800
        )
        finish_logging(
            log_runs(server, server.admin_key, Path(tmp), "many", "20", "10", str(args.many_steps)),
            timeout=1800,
        )
        fill_table(server, args.table_runs)
        out["fill_s"] = round(time.perf_counter() - started, 1)
        selected = ",".join(f"many{r}" for r in range(20))
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            out["one_run_1m_steps"] = measure(
                browser, server, f"#/r/admin/long/long{args.steps}", "firstChartAt", args.repeat
            )
            out["20_runs_x_10_keys"] = measure(
                browser, server, f"#/p/admin/many?runs={selected}", "firstChartAt", args.repeat
            )
            out["runs_table_10k"] = measure(
                browser, server, "#/p/admin/table", "runsTableAt", args.repeat
            )
            browser.close()
        out.update(server_share(server, args.steps))
    out["target_ms"] = 1000
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
