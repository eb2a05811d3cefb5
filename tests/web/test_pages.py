"""The web UI in a real browser against a real server: sign in, projects, the runs table,
charts, the run page, sign out, and what another user's key sees."""

from __future__ import annotations

import importlib.metadata
import json
import re
from pathlib import Path
from typing import Any

import pytest

from .conftest import Site, api, screenshot

Page = Any  # playwright's Page (typed loosely: playwright is a test-only dependency)

ALL_RUNS = {"alpha", "beta", "gamma", "delta"}


def sign_in(page: Page, site: Site, key: str, where: str = "#/") -> None:
    page.goto(site.url + "/" + where)
    page.fill("#api-key", key)
    page.click("#sign-in button[type=submit]")
    page.wait_for_selector("#sign-out")


def rows(page: Page) -> list[str]:
    page.wait_for_selector("#runs-table")
    return list(
        page.eval_on_selector_all("#runs-table tbody tr", "rs => rs.map(r => r.dataset.run)")
    )


def wait_rows(page: Page, expected: list[str]) -> None:
    """Wait until the table shows exactly ``expected``, in order."""
    try:
        page.wait_for_function(
            "want => JSON.stringify([...document.querySelectorAll('#runs-table tbody tr')]"
            ".map(r => r.dataset.run)) === want",
            arg=json.dumps(expected, separators=(",", ":")),
            timeout=5000,
        )
    except Exception:
        problem = page.inner_text("main .error") if page.locator("main .error").count() else ""
        raise AssertionError(f"the table shows {rows(page)}, not {expected} {problem}") from None


def drawn(page: Page, key: str) -> dict[str, Any]:
    """The panel of ``key`` once drawn, as the page holds it (window.trackd.panels)."""
    panel = page.locator(f'.panel[data-key="{key}"]')
    panel.scroll_into_view_if_needed()
    page.wait_for_function(
        "k => window.trackd.panels[k] && window.trackd.panels[k].state === 'drawn'", arg=key
    )
    return dict(page.evaluate("k => window.trackd.panels[k]", key))


def test_sign_in_shows_projects_and_sign_out_forgets_the_key(page: Page, site: Site) -> None:
    page.goto(site.url + "/")
    page.fill("#api-key", "trk_not-a-key")
    page.click("#sign-in button[type=submit]")
    page.wait_for_selector("#sign-in .error:has-text('not valid')")
    sign_in(page, site, site.admin_key)
    assert page.inner_text("#viewer").startswith("admin")
    # the server says what it is on every page; to an admin, where its data lives too
    version = importlib.metadata.version("trackd")
    assert page.inner_text("#server") == f"server {version} · sqlite · {site.server.data_dir}"
    page.wait_for_selector("a.project")
    projects = page.eval_on_selector_all("a.project", "as => as.map(a => a.textContent)")
    assert projects == ["vision"]
    assert site.admin_key not in page.url
    assert page.evaluate("sessionStorage.getItem('trackd.apiKey')") == site.admin_key
    screenshot(page, "projects")
    page.click("#sign-out")
    page.wait_for_selector("#sign-in")
    assert page.evaluate("sessionStorage.length") == 0
    page.reload()
    page.wait_for_selector("#sign-in")  # nothing remembered the key


def test_runs_table_lists_sorts_and_filters(page: Page, site: Site) -> None:
    sign_in(page, site, site.admin_key, "#/p/admin/vision")
    assert set(rows(page)) == ALL_RUNS
    assert page.inner_text("#runs-count").startswith("4 runs")
    failed = page.locator('tr[data-run="delta"] .state')
    assert failed.inner_text() == "failed"
    finished = page.locator('tr[data-run="alpha"] .state')
    colour = "e => getComputedStyle(e).color"
    assert failed.evaluate(colour) != finished.evaluate(colour)
    screenshot(page, "project")

    page.click('button.sort[data-sort="name"]')
    wait_rows(page, ["alpha", "beta", "delta", "gamma"])
    page.click('button.sort[data-sort="name"]')
    wait_rows(page, ["gamma", "delta", "beta", "alpha"])

    page.select_option("#filters select[name=state]", "failed")
    wait_rows(page, ["delta"])
    page.select_option("#filters select[name=state]", "")
    page.fill("#filters input[name=where]", "lr > 0.005")
    page.click("#filters button[type=submit]")
    wait_rows(page, ["delta", "beta", "alpha"])  # still sorted by name, descending
    page.fill("#filters input[name=where]", "")
    page.fill("#filters input[name=tags]", "baseline")
    page.click("#filters button[type=submit]")
    wait_rows(page, ["gamma", "alpha"])
    page.fill("#filters input[name=tags]", "")
    page.fill("#filters input[name=search]", "amm")
    page.click("#filters button[type=submit]")
    wait_rows(page, ["gamma"])
    assert "q=amm" in page.url  # the view is in the address


def test_columns_can_be_shown_and_hidden(page: Page, site: Site) -> None:
    sign_in(page, site, site.admin_key, "#/p/admin/vision")
    rows(page)
    page.click("details.columns summary")
    page.check('input[name=column][value="config.lr"]')
    page.wait_for_selector('tr[data-run="alpha"] td[data-col="config.lr"]:has-text("0.1")')
    page.uncheck('input[name=column][value="host"]')
    page.wait_for_function("!document.querySelector('#runs-table td[data-col=host]')")
    page.check('input[name=column][value="summary.train/loss"]')
    page.click('button.sort[data-sort="config.lr"]')
    wait_rows(page, ["gamma", "beta", "alpha", "delta"])


def test_charts_of_selected_runs_have_every_point(page: Page, site: Site) -> None:
    sign_in(page, site, site.admin_key, "#/p/admin/vision?runs=alpha,beta")
    rows(page)
    loss = drawn(page, "train/loss")
    assert {run: d["points"] for run, d in loss["runs"].items()} == {"alpha": 50, "beta": 80}
    assert loss["runs"]["beta"]["nonFinite"] == 1  # the NaN, drawn as a marker
    assert loss["runs"]["beta"]["drawn"] == 79
    acc = drawn(page, "val/acc")
    assert acc["runs"]["alpha"]["points"] == 50
    # one colour per run, the same in the table and on every panel
    swatch = page.locator('tr[data-run="beta"] .swatch').evaluate(
        "e => getComputedStyle(e).backgroundColor"
    )
    legend_colours = set()
    for key in ("train/loss", "val/acc"):
        box = page.locator(f'.panel[data-key="{key}"] .u-over').bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] / 2)
        item = page.locator(f'.panel[data-key="{key}"] .legend .item:has-text("beta") .swatch')
        legend_colours.add(item.evaluate("e => getComputedStyle(e).backgroundColor"))
    assert legend_colours == {swatch}
    screenshot(page, "charts")

    page.uncheck('tr[data-run="alpha"] input[type=checkbox]')
    page.check('tr[data-run="gamma"] input[type=checkbox]')
    page.wait_for_function(
        "() => (window.trackd.panels['train/loss'] || {runs: {}}).runs.gamma !== undefined"
    )
    loss = drawn(page, "train/loss")
    assert {run: d["points"] for run, d in loss["runs"].items()} == {"beta": 80, "gamma": 120}
    assert re.search(r"runs=beta(%2C|,)gamma", page.url)


def test_run_page_shows_overview_config_summary_files_and_charts(page: Page, site: Site) -> None:
    sign_in(page, site, site.admin_key, "#/p/admin/vision")
    page.click('tr[data-run="alpha"] td[data-col=name] a')
    page.wait_for_selector("#overview")
    assert page.inner_text("#run-state") == "finished"
    assert "_log_runs.py" in page.inner_text('#overview tr[data-key="program"] td')
    assert page.inner_text('#overview tr[data-key="notes"] td') == "notes of alpha"
    assert page.inner_text('#overview tr[data-key="tags"] td') == "baseline"
    assert page.inner_text('#overview tr[data-key="group"] td') == "g1"
    assert page.inner_text('#config tr[data-key="lr"] td') == "0.1"
    assert page.inner_text('#summary tr[data-key="train/loss"] td') == "0.02"
    assert drawn(page, "train/loss")["runs"]["alpha"]["points"] == 50
    screenshot(page, "run")
    with page.expect_download() as download:
        page.click('button.download[data-file="notes/readme.txt"]')
    path = download.value.path()
    assert Path(path).read_bytes() == b"hello from alpha\n"


def test_smoothing_x_axis_and_log_scale_are_view_settings(page: Page, site: Site) -> None:
    sign_in(page, site, site.admin_key, "#/r/admin/vision/gamma")
    raw = drawn(page, "train/loss")
    assert raw["smoothing"] == 0 and raw["runs"]["gamma"]["smoothedLast"] is None
    last = raw["runs"]["gamma"]["lastValue"]
    assert last == pytest.approx(1 / 120)
    page.locator("input[name=smoothing]").fill("0.9")
    page.locator("input[name=smoothing]").dispatch_event("change")
    page.wait_for_function("() => window.trackd.panels['train/loss'].smoothing === 0.9")
    smooth = drawn(page, "train/loss")["runs"]["gamma"]
    assert smooth["lastValue"] == pytest.approx(last)  # the faint raw line is still there
    # loss = 1/(step+1) falls, so its moving average lags above it
    assert smooth["smoothedLast"] > 1.05 * last
    assert "smooth=0.9" in page.url
    page.select_option("select[name=x-axis]", "relative")
    page.wait_for_function("() => window.trackd.panels['train/loss'].xAxis === 'relative'")
    page.check("input[name=log]")
    page.wait_for_function("() => window.trackd.panels['train/loss'].logY")
    assert "log=1" in page.url and "x=relative" in page.url
    screenshot(page, "smoothed")
    page.reload()  # the address restores the view
    restored = drawn(page, "train/loss")
    assert (restored["smoothing"], restored["xAxis"], restored["logY"]) == (0.9, "relative", True)
    assert page.locator("select[name=x-axis]").input_value() == "relative"


@pytest.mark.parametrize("where", ["#/", "#/p/admin/vision", "#/r/admin/vision/alpha"])
def test_another_users_key_sees_nothing_of_the_project(page: Page, site: Site, where: str) -> None:
    sign_in(page, site, site.other_key, where)
    page.wait_for_selector("main :is(.error:not(:empty), a.project)")
    assert page.inner_text("#server") == f"server {importlib.metadata.version('trackd')}"
    text = page.inner_text("main")
    for name in ("vision", "alpha", "beta", "gamma", "0.1"):
        if name == "vision" and where != "#/":
            continue  # the error names what was asked for
        assert name not in text.replace("admin / vision", "")
    if where == "#/":
        assert page.eval_on_selector_all("a.project", "as => as.map(a => a.textContent)") == [
            "secret"
        ]
    else:
        assert "not found or you are not a member" in page.inner_text("main .error")
    assert page.locator("#runs-table").count() == 0


def test_the_table_works_from_the_keyboard(page: Page, site: Site) -> None:
    sign_in(page, site, site.admin_key, "#/p/admin/vision?runs=&sort=%2Bname")
    wait_rows(page, ["alpha", "beta", "delta", "gamma"])
    page.focus('tr[data-run="alpha"]')
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Space")  # ticks delta: its charts appear, the focus stays on its row
    page.wait_for_function("() => window.trackd.panels['train/loss'] !== undefined")
    assert page.evaluate("() => document.activeElement.dataset.run") == "delta"
    assert page.locator('tr[data-run="delta"] input[type=checkbox]').is_checked()
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Enter")
    page.wait_for_selector("#overview")
    assert page.url.endswith("#/r/admin/vision/beta")


def test_a_revoked_key_is_signed_out(page: Page, site: Site) -> None:
    with api(site, site.admin_key) as admin:
        made = admin.post("/admin/users/bob/keys")
        assert made.status_code == 201, made.text
        key, prefix = made.json()["api_key"], made.json()["prefix"]
        sign_in(page, site, key)
        page.wait_for_selector("a.project")
        assert admin.delete(f"/admin/keys/{prefix}").status_code == 200
    page.click("a.project")
    page.wait_for_selector("#sign-in")
    assert page.evaluate("sessionStorage.length") == 0


def test_compare_shows_the_selected_runs_side_by_side_and_their_differences(
    page: Page, site: Site
) -> None:
    sign_in(page, site, site.admin_key, "#/p/admin/vision?runs=beta,gamma")
    rows(page)
    page.click("#compare summary")
    differs = "() => [...document.querySelectorAll('#compare tbody tr')].map(r => [r.dataset.key, r.classList.contains('differs')])"
    shown = dict(page.evaluate(differs))
    assert shown["config.lr"] is True
    assert shown["config.batch"] is False and shown["config.opt"] is False  # both 64, adam
    assert page.inner_text('#compare tr[data-key="config.lr"]').split("\t")[1:] == ["0.01", "0.001"]
    page.check("#compare input[name=only-differences]")
    page.wait_for_function(
        "() => !document.querySelector('#compare tr[data-key=\"config.batch\"]')"
    )
    assert set(dict(page.evaluate(differs))) == {
        "config.lr",
        "summary.train/loss",
        "summary.val/acc",
    }
    assert "diff=1" in page.url
    screenshot(page, "compare")


def test_rows_can_be_grouped_by_group_or_a_config_key(page: Page, site: Site) -> None:
    sign_in(page, site, site.admin_key, "#/p/admin/vision?sort=%2Bname")
    wait_rows(page, ["alpha", "beta", "delta", "gamma"])
    page.select_option("select[name=group-by]", "group")
    page.wait_for_selector("#runs-table tr.group-row")
    layout = page.eval_on_selector_all(
        "#runs-table tbody tr",
        "rs => rs.map(r => r.dataset.group ? '#' + r.dataset.group : r.dataset.run)",
    )
    assert layout == ["#g1", "alpha", "beta", "#(none)", "delta", "#g2", "gamma"]
    page.select_option("select[name=group-by]", "config.opt")
    page.wait_for_selector('#runs-table tr.group-row[data-group="sgd"]')
    assert "by=config.opt" in page.url
    screenshot(page, "grouped")


def test_name_search_is_the_servers_and_finds_runs_beyond_the_first_page(
    page: Page, site: Site
) -> None:
    from tests.server import _batches

    with site.server.client() as admin:  # 60 runs: more than one page (50) of the table
        for r in range(60):
            records = [_batches.run_start(f"s{r:02d}", 1, "paged", name=f"sweep-{r:02d}")]
            _batches.ingest(admin, f"s{r:02d}", records, project="paged").raise_for_status()
    asked: list[str] = []
    page.on("request", lambda r: "/projects/paged/runs" in r.url and asked.append(r.url))
    sign_in(page, site, site.admin_key, "#/p/admin/paged")
    assert len(rows(page)) == 50 and page.inner_text("#runs-count").startswith("60 runs")
    page.fill("#filters input[name=search]", "SWEEP-0")  # the oldest ten: the second page
    page.click("#filters button[type=submit]")
    wait_rows(page, [f"s{r:02d}" for r in range(9, -1, -1)])
    assert page.inner_text("#runs-count").startswith("10 runs")
    assert "search=SWEEP-0" in asked[-1]  # the server searched, not the page it had
    page.fill("#filters input[name=search]", "sweep-07")
    page.click("#filters button[type=submit]")
    wait_rows(page, ["s07"])
    assert page.inner_text("#runs-count").startswith("1 run ·")


def test_charts_read_history_in_one_bulk_request_per_panel_group(page: Page, site: Site) -> None:
    reads: list[Any] = []
    page.on("request", lambda r: "/history" in r.url and reads.append(r))
    sign_in(page, site, site.admin_key, "#/p/admin/vision?runs=alpha,beta,gamma")
    for key in ("train/loss", "val/acc"):
        assert {r: d["points"] for r, d in drawn(page, key)["runs"].items()} == {
            "alpha": 50,
            "beta": 80,
            "gamma": 120,
        }
    assert reads and all(
        r.method == "POST" and r.url.endswith("/entities/admin/projects/vision/history")
        for r in reads
    )
    assert all(r.headers["accept"] == "application/vnd.trackd.columns+msgpack" for r in reads)
    asked = [json.loads(r.post_data) for r in reads]
    assert len(reads) <= 2, asked  # a request per group of panels on screen, not per run
    assert all(set(a["runs"]) == {"alpha", "beta", "gamma"} for a in asked)
    assert {k for a in asked for k in a["keys"]} == {"train/loss", "val/acc"}


def headers(page: Page) -> list[str]:
    return list(
        page.eval_on_selector_all(
            "#runs-table thead th[data-col]", "ts => ts.map(t => t.dataset.col)"
        )
    )


def test_columns_move_by_keyboard_and_by_drag_and_the_address_keeps_their_order(
    page: Page, site: Site
) -> None:
    sign_in(page, site, site.admin_key, "#/p/admin/vision?cols=name,state,group,config.lr")
    rows(page)
    assert headers(page) == ["name", "state", "group", "config.lr"]
    page.focus('button.sort[data-sort="config.lr"]')
    page.keyboard.press("Alt+ArrowLeft")
    page.keyboard.press("Alt+ArrowLeft")  # the moved column keeps the focus
    assert headers(page) == ["name", "config.lr", "state", "group"]
    assert page.evaluate("document.activeElement.dataset.sort") == "config.lr"
    page.drag_and_drop(
        'th[data-col="name"]', 'th[data-col="group"]'
    )  # onto a column to its right: after it
    assert headers(page) == ["config.lr", "state", "group", "name"]
    # the cells follow their headers
    cells = page.eval_on_selector_all(
        'tr[data-run="alpha"] td[data-col]', "ts => ts.map(t => t.dataset.col)"
    )
    assert cells == ["config.lr", "state", "group", "name"]
    assert (
        "cols=config.lr%2Cstate%2Cgroup%2Cname" in page.url
        or "cols=config.lr,state,group,name" in page.url
    )
    page.reload()
    rows(page)
    assert headers(page) == ["config.lr", "state", "group", "name"]


def test_the_x_axis_can_be_another_logged_key(page: Page, site: Site) -> None:
    bodies: list[dict[str, Any]] = []
    page.on(
        "request", lambda r: r.url.endswith("/history") and bodies.append(json.loads(r.post_data))
    )
    sign_in(page, site, site.admin_key, "#/r/admin/vision/gamma")
    assert drawn(page, "train/loss")["xRange"] == [0, 119]  # steps
    options = page.eval_on_selector_all("select[name=x-axis] option", "os => os.map(o => o.value)")
    assert "val/acc" in options
    page.select_option("select[name=x-axis]", "val/acc")
    page.wait_for_function("() => window.trackd.panels['train/loss'].xAxis === 'val/acc'")
    loss = drawn(page, "train/loss")
    # val/acc is step / 120: each loss point is drawn at val/acc's value of its step
    assert loss["xRange"] == pytest.approx([0, 119 / 120])
    assert loss["runs"]["gamma"]["points"] == 120 and loss["runs"]["gamma"][
        "lastValue"
    ] == pytest.approx(1 / 120)
    assert bodies[-1]["x"] == "val/acc" and "train/loss" in bodies[-1]["keys"]
    assert "x=val%2Facc" in page.url
    screenshot(page, "x-by-key")
    page.reload()  # the address restores it
    page.wait_for_function("() => window.trackd.panels['train/loss']?.xAxis === 'val/acc'")
    assert drawn(page, "train/loss")["xRange"] == pytest.approx([0, 119 / 120])
    assert page.locator("select[name=x-axis]").input_value() == "val/acc"


def test_parallel_coordinates_of_config_keys_against_a_chosen_metric(
    page: Page, site: Site
) -> None:
    sign_in(page, site, site.admin_key, "#/p/admin/vision")
    rows(page)
    assert page.evaluate("() => window.trackd.parallel") is None  # closed: not drawn
    page.click("#parallel-box summary")
    page.wait_for_function("() => window.trackd.parallel && window.trackd.parallel.lines > 0")
    page.select_option("select[name=parallel-metric]", "train/loss")
    page.wait_for_function("() => window.trackd.parallel.metric === 'train/loss'")
    drawn_ = page.evaluate("() => window.trackd.parallel")
    # the config keys whose values differ, then the metric (every run has train/loss)
    assert drawn_["axes"] == ["config.batch", "config.lr", "config.opt", "summary.train/loss"]
    assert "pc=train%2Floss" in page.url and "pcopen=1" in page.url

    def heights(run: str) -> list[float]:
        points = page.get_attribute(f'svg.parallel-plot polyline[data-run="{run}"]', "points")
        return [float(p.split(",")[1]) for p in points.split()]

    # lr (log scale): delta 0.5 highest (smallest y), then alpha 0.1, beta 0.01, gamma 0.001;
    # delta has no batch or opt: its line joins the two axes it has, lr and the metric
    lr = {run: heights(run)[1] for run in ("alpha", "beta", "gamma")}
    delta = heights("delta")
    assert len(delta) == 2 and all(len(heights(r)) == 4 for r in lr)
    assert delta[0] < lr["alpha"] < lr["beta"] < lr["gamma"]
    # the metric axis: delta's loss (3.0) is the highest; gamma's (1/120) the lowest
    loss = {run: heights(run)[-1] for run in ("alpha", "beta", "gamma")}
    assert delta[-1] < loss["alpha"] < loss["beta"] < loss["gamma"]
    screenshot(page, "parallel")
    page.reload()
    page.wait_for_function(
        "() => window.trackd.parallel && window.trackd.parallel.metric === 'train/loss'"
    )


def view_of(page: Page) -> dict[str, Any]:
    """What a project page shows: rows, columns, ticked runs, chart settings, parallel metric."""
    panel = drawn(page, "train/loss")
    return {
        "rows": rows(page),
        "columns": headers(page),
        "ticked": sorted(
            page.eval_on_selector_all("#runs-table tr.selected", "rs => rs.map(r => r.dataset.run)")
        ),
        "charted": sorted(panel["runs"]),
        "chart": (panel["xAxis"], panel["smoothing"], panel["logY"]),
        "parallel": page.evaluate("() => window.trackd.parallel.metric"),
    }


def test_a_link_opens_the_same_view_for_a_colleague(page: Page, site: Site, browser: Any) -> None:
    sign_in(page, site, site.admin_key, "#/p/admin/vision?cols=name,state,config.lr")
    rows(page)
    page.click('button.sort[data-sort="name"]')
    wait_rows(page, ["alpha", "beta", "delta", "gamma"])
    for run in ("alpha", "delta"):  # the first four are charted; untick two
        page.uncheck(f'tr[data-run="{run}"] input[type=checkbox]')
    page.focus('button.sort[data-sort="config.lr"]')
    page.keyboard.press("Alt+ArrowLeft")
    page.select_option("select[name=x-axis]", "val/acc")
    page.check("input[name=log]")
    page.click("#parallel-box summary")
    page.select_option("select[name=parallel-metric]", "val/acc")
    page.wait_for_function(
        "() => window.trackd.panels['train/loss']?.logY && window.trackd.parallel.metric === 'val/acc'"
    )
    shown = view_of(page)
    assert shown["ticked"] == ["beta", "gamma"] and shown["charted"] == ["beta", "gamma"]
    assert shown["columns"] == ["name", "config.lr", "state"]
    link = page.url
    assert site.admin_key not in link
    colleague = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        other = colleague.new_page()
        sign_in(other, site, site.admin_key, link.split("/", 3)[3])
        other.wait_for_function(
            "() => window.trackd.parallel && window.trackd.panels['train/loss']"
        )
        assert view_of(other) == shown
        screenshot(other, "deep-link")
    finally:
        colleague.close()
