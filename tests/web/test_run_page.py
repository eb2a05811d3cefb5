"""The run page's tabs and the runs table's user column, in a real browser against a real
server: runs of a team project logged for real by two users (console output, a tqdm bar,
system metrics), and a shared run whose second writer crashed (issues 10 and 11)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgpack
import pytest

from tests._support.server import running_server
from tests.server._batches import MSGPACK, finish, history, run_start

from ._logging import finish_logging, log_runs
from .conftest import STATIC, Site, screenshot
from .test_pages import sign_in, wait_rows

Page = Any

LINES = 5000  # more than two pages of the Logs tab (2,000 lines a page)
STDERR = {i for i in range(LINES) if i % 7 == 3}


def _ingest(client: httpx.Client, run_id: str, writer: str, records: list[Any]) -> None:
    doc = {"entity": "lab", "project": "shared", "run_id": run_id, "writer": writer}
    doc["records"] = [list(r) for r in records]
    answer = client.post("/ingest", content=msgpack.packb(doc), headers=MSGPACK)
    assert answer.status_code == 200, answer.text


def _shared_run(client: httpx.Client) -> None:
    """Run "shared" of two writers: rank-0 (primary) still running, rank-1 crashed."""
    start = {"project": "shared", "entity": "lab", "host": "node-a"}
    _ingest(
        client, "shared", "rank-0", [run_start("shared", writer="rank-0", primary=True, **start)]
    )
    rank1 = [run_start("shared", writer="rank-1", primary=False, **{**start, "host": "node-b"})]
    rank1 += [history("shared", 2, 7, {"rank-1/x": 1.0}), finish("shared", 3, "crashed", 137)]
    _ingest(client, "shared", "rank-1", rank1)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Team "lab" (admin and bob): admin's run "printer", bob's run "theirs", run "shared"."""
    if not STATIC.is_file():
        pytest.fail(f"the web UI is not built ({STATIC} is missing); run `make web`")
    workdir = tmp_path_factory.mktemp("lab")
    with running_server(workdir / "server") as server:
        with server.client() as admin:
            made = admin.post("/admin/users", json={"name": "bob"})
            assert made.status_code == 201, made.text
            assert admin.post("/admin/teams", json={"name": "lab"}).status_code == 201
            for user in ("admin", "bob"):
                assert admin.post("/admin/teams/lab/members", json={"user": user}).is_success
            _shared_run(admin)
        bob_key = made.json()["api_key"]
        mine = log_runs(server, server.admin_key, workdir / "a", "team", "printer", str(LINES))
        theirs = log_runs(server, bob_key, workdir / "b", "team", "theirs", "3")
        finish_logging(mine)
        finish_logging(theirs)
        yield Site(server, server.admin_key, bob_key, workdir)


def _cells(page: Page, column: str) -> dict[str, str]:
    return dict(
        page.eval_on_selector_all(
            f'#runs-table tbody tr td[data-col="{column}"]',
            "tds => tds.map(td => [td.parentElement.dataset.run, td.textContent])",
        )
    )


def test_the_user_column_shows_who_created_each_run_and_sorts_and_filters(
    page: Page, lab: Site
) -> None:
    sign_in(page, lab, lab.other_key, "#/p/lab/shared")
    page.wait_for_selector("#runs-table")
    assert _cells(page, "user") == {"printer": "admin", "theirs": "bob", "shared": "admin"}
    page.click('button[data-sort="user"]')
    wait_rows(page, ["shared", "printer", "theirs"])  # admin's (ties: the older first), bob's
    page.click('button[data-sort="user"]')
    wait_rows(page, ["theirs", "shared", "printer"])
    assert "sort=-user" in page.url
    page.fill("#filters input[name=where]", "user = bob")
    page.click("#filters button[type=submit]")
    wait_rows(page, ["theirs"])
    screenshot(page, "runs-user-column")
    page.goto(lab.url + "/#/r/lab/shared/printer")
    page.wait_for_selector('#overview tr[data-key="user"]')
    assert page.inner_text('#overview tr[data-key="user"] td') == "admin"


def _log_rows(page: Page) -> list[dict[str, Any]]:
    return list(
        page.eval_on_selector_all(
            "#log-lines .log-row[data-line]",
            "rs => rs.map(r => ({line: Number(r.dataset.line), stream: r.dataset.stream,"
            " text: r.querySelector('.text').textContent,"
            " time: r.querySelector('time').textContent}))",
        )
    )


def _log_count(page: Page) -> int:
    return int(page.get_attribute("#log-lines", "data-count") or 0)


def test_the_logs_tab_pages_through_every_line_with_its_time_and_stream(
    page: Page, lab: Site
) -> None:
    with api_client(lab) as client:
        last = client.get("/runs/lab/shared/printer/logs", params={"limit": 1}).json()["last_line"]
    asked: list[str] = []
    page.on("request", lambda r: "/logs" in r.url and asked.append(r.url))
    sign_in(page, lab, lab.admin_key, "#/r/lab/shared/printer?tab=logs")
    page.wait_for_selector("#log-lines .log-row[data-line]")
    page.wait_for_function(f"document.querySelector('#log-lines').dataset.count === '{last}'")
    # the lines printed, then tqdm's bar as its last state only, then "done"
    assert last == LINES + 2
    page.evaluate("document.querySelector('#log-lines').scrollTop = 0")
    page.wait_for_selector('#log-lines .log-row[data-line="1"]')
    first = {r["line"]: r for r in _log_rows(page)}
    assert first[1]["text"] == "line 0" and first[1]["stream"] == "stdout"
    assert first[4]["text"] == "line 3" and first[4]["stream"] == "stderr"
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d\d\d", first[1]["time"])
    assert page.locator('#log-lines .log-row.stderr[data-line="4"]').count() == 1
    # virtual: a few dozen rows in the page, not thousands
    assert len(first) < 200
    # scrolled to the middle: that page of lines is fetched and drawn
    page.evaluate("document.querySelector('#log-lines').scrollTop = 18 * 3000")
    page.wait_for_selector('#log-lines .log-row[data-line="3001"]')
    middle = {r["line"]: r["text"] for r in _log_rows(page)}
    assert middle[3001] == "line 3000"
    # a filter: every line read once, the matches listed
    page.fill("input[name=log-filter]", "50/50")
    page.wait_for_function("document.querySelector('#log-lines').dataset.count === '1'")
    [bar] = _log_rows(page)
    assert bar["line"] == LINES + 1 and bar["stream"] == "stderr" and "bar" in bar["text"]
    assert "logq=50%2F50" in page.url or "logq=50/50" in page.url
    screenshot(page, "run-logs-filtered")
    page.fill("input[name=log-filter]", "line 4999")
    page.wait_for_function("document.querySelector('#log-lines').dataset.count === '1'")
    assert [r["text"] for r in _log_rows(page)] == ["line 4999"]
    page.fill("input[name=log-filter]", "")
    page.wait_for_function(f"document.querySelector('#log-lines').dataset.count === '{last}'")
    screenshot(page, "run-logs")
    with page.expect_download() as got:
        page.click("#log-download")
    text = Path(got.value.path()).read_text().splitlines()
    assert len(text) == last
    assert text[0].endswith(" - stdout line 0") and text[3].endswith(" - stderr line 3")
    assert text[-1].endswith(" - stdout done")
    # a run that finished is not polled: every request named an 'after' of a page start
    afters = {int(re.search(r"after=(\d+)", u).group(1)) for u in asked}  # type: ignore[union-attr]
    assert afters <= {0, 2000, 4000}, afters


def api_client(site: Site) -> httpx.Client:
    return httpx.Client(
        base_url=site.url + "/api/v1",
        headers={"Authorization": f"Bearer {site.admin_key}"},
        trust_env=False,
    )


@pytest.mark.timeout(120)
def test_a_running_runs_logs_come_live_fetching_only_after_the_last_line(
    page: Page, lab: Site, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    proc = log_runs(lab.server, lab.admin_key, tmp_path, "team", "ticker", "2", str(release))
    try:
        with api_client(lab) as client:
            deadline = time.monotonic() + 60
            while client.get("/runs/lab/live/ticker/logs").json().get("last_line", 0) < 3:
                assert time.monotonic() < deadline, "the run printed nothing"
                time.sleep(0.2)
        asked: list[str] = []
        page.on("request", lambda r: "/logs" in r.url and asked.append(r.url))
        sign_in(page, lab, lab.admin_key, "#/r/lab/live/ticker?tab=logs")
        page.wait_for_selector("#log-lines .log-row[data-line]")
        seen = _log_count(page)
        page.wait_for_function(
            f"Number(document.querySelector('#log-lines').dataset.count) > {seen + 5}",
            timeout=15_000,
        )
        assert "live" in page.inner_text("#log-status")
        release.touch()
        finish_logging(proc)
        page.wait_for_function(  # the Overview tab's state, hidden behind the Logs tab
            "document.querySelector('#run-state').textContent === 'finished'", timeout=15_000
        )
        page.wait_for_function(
            "[...document.querySelectorAll('#log-lines .text')].some(t => t.textContent === 'done')"
        )
    finally:
        release.touch()
        if proc.poll() is None:
            proc.kill()
    with api_client(lab) as client:
        last = client.get("/runs/lab/live/ticker/logs").json()["last_line"]
    assert _log_count(page) == last
    # after the first page, each poll asked only for the lines after the last one it had
    afters = [int(re.search(r"after=(\d+)", u).group(1)) for u in asked]  # type: ignore[union-attr]
    assert afters[0] == 0 and len(afters) >= 3
    assert afters[1:] == sorted(afters[1:]) and all(a > 0 for a in afters[1:]), afters
    screenshot(page, "run-logs-live")


def test_the_system_tab_charts_system_metrics_against_time_apart_from_the_users_panels(
    page: Page, lab: Site
) -> None:
    sign_in(page, lab, lab.admin_key, "#/r/lab/shared/printer")
    user_charts = ".charts:not([data-scope])"
    page.wait_for_selector(f'{user_charts} .panel[data-key="train/loss"]')
    # the user's panels: their keys only
    user_keys = page.eval_on_selector_all(
        f"{user_charts} .panel", "ps => ps.map(p => p.dataset.key)"
    )
    assert user_keys == ["train/loss"]
    page.click("#tab-system")
    assert "tab=system" in page.url
    page.wait_for_selector('.charts[data-scope="sys"] .panel[data-key="system/cpu.percent"]')
    groups = page.eval_on_selector_all(
        '.charts[data-scope="sys"] details.group', "gs => gs.map(g => g.dataset.prefix)"
    )
    assert groups[:4] == ["CPU", "memory", "disk", "network"], groups
    key = "system/cpu.percent"
    page.wait_for_function(
        "k => window.trackd.panels[k] && window.trackd.panels[k].state === 'drawn'", arg=key
    )
    drawn = page.evaluate("k => window.trackd.panels[k]", key)
    assert drawn["xAxis"] == "relative"
    assert drawn["runs"]["printer"]["points"] >= 3
    # the x axis is seconds since the first sample, not the step
    assert drawn["xRange"][0] == 0 and 0 < drawn["xRange"][1] < 120
    screenshot(page, "run-system")
    page.select_option('.charts[data-scope="sys"] select[name=x-axis]', "wall")
    page.wait_for_function(
        "k => window.trackd.panels[k].xAxis === 'wall' && window.trackd.panels[k].state === 'drawn'",
        arg=key,
    )
    assert "sys.x=wall" in page.url and "&x=" not in page.url


def test_the_writers_of_a_shared_run_show_a_crashed_secondary(page: Page, lab: Site) -> None:
    sign_in(page, lab, lab.admin_key, "#/r/lab/shared/shared")
    page.wait_for_selector("#writers")
    writers = page.eval_on_selector_all(
        "#writers tbody tr",
        "rs => rs.map(r => [r.dataset.writer, r.dataset.state,"
        " [...r.children].map(c => c.textContent)])",
    )
    assert [(w, s) for w, s, _ in writers] == [("rank-0", "running"), ("rank-1", "crashed")]
    cells = {w: c for w, _, c in writers}
    assert cells["rank-0"][0] == "rank-0 primary" and cells["rank-0"][2] == "node-a"
    assert cells["rank-1"][0] == "rank-1" and cells["rank-1"][2] == "node-b"
    assert cells["rank-1"][4] == "7" and cells["rank-1"][7] == "137"  # last step, exit code
    assert page.locator('#writers tr[data-writer="rank-1"] .state-crashed').count() == 1
    screenshot(page, "run-writers")


def test_the_selected_runs_media_side_by_side_with_one_step_slider(page: Page, lab: Site) -> None:
    blobs: list[str] = []
    page.on("request", lambda r: "/blobs/" in r.url and blobs.append(r.url))
    sign_in(page, lab, lab.admin_key, "#/p/lab/shared?runs=printer,theirs&mcopen=1")
    page.wait_for_selector("#media-compare .media-column")
    columns = page.eval_on_selector_all(
        "#media-compare .media-column", "cs => cs.map(c => c.dataset.run)"
    )
    assert columns == ["printer", "theirs"]

    def shown() -> list[str]:
        page.wait_for_function(
            "[...document.querySelectorAll('#media-compare .media-panel')]"
            ".every(p => p.dataset.state === 'drawn')"
        )
        return list(
            page.eval_on_selector_all(
                "#media-compare .media-panel",
                "ps => ps.map(p => p.querySelector('.step-shown').textContent)",
            )
        )

    assert shown() == ["step 2", "step 2"]  # the last step of each
    page.fill("input[name=media-compare-step]", "0")
    page.wait_for_function("document.querySelector('#media-compare-step').textContent === 'step 0'")
    assert shown() == ["step 0", "step 0"]
    assert "mcstep=0" in page.url
    captions = page.eval_on_selector_all(
        "#media-compare .media-column", "cs => cs.map(c => c.textContent)"
    )
    assert "printer 0" in captions[0] and "theirs 0" in captions[1], captions
    # each column's image is its own run's
    assert any("/runs/lab/shared/printer/" in u for u in blobs)
    assert any("/runs/lab/shared/theirs/" in u for u in blobs)
    screenshot(page, "media-compare")
