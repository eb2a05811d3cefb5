"""Charts in a real browser: a long run's spike survives downsampling, dragging zooms and
fetches the range again at full resolution, double-click resets, and a running run's charts
and state update by themselves."""

from __future__ import annotations

import time
from typing import Any

import pytest

from ._logging import finish_logging, log_runs
from .conftest import Site, api, screenshot
from .test_pages import drawn, sign_in

Page = Any

STEPS = 20_000
SPIKE = STEPS * 2 // 3  # _log_runs.log_long: loss is 100 here, about 1 elsewhere


def test_a_long_runs_spike_survives_and_drag_zooms_at_full_resolution(
    page: Page, site: Site
) -> None:
    finish_logging(log_runs(site.server, site.admin_key, site.workdir, "long", str(STEPS)))
    sign_in(page, site, site.admin_key, f"#/r/admin/long/long{STEPS}")
    full = drawn(page, "loss")["runs"][f"long{STEPS}"]
    assert full["maxValue"] == 100.0  # one step in 20,000, kept by the server's min/max buckets
    bucket = 2 * STEPS // 1000  # each keeps its min and max point, not its ends
    assert full["minStep"] < bucket and full["maxStep"] > STEPS - 1 - bucket
    assert 500 < full["points"] <= 1500, full

    drag(page, "loss", 0.40, 0.42)
    page.wait_for_function("() => window.trackd.panels.loss.zoomed")
    zoomed = page.evaluate("() => window.trackd.panels.loss")["runs"][f"long{STEPS}"]
    span = zoomed["maxStep"] - zoomed["minStep"] + 1
    assert 50 < span < 1000, zoomed
    assert zoomed["points"] == span  # every step of the range: full resolution
    assert zoomed["points"] > full["points"] * span / STEPS * 5  # far denser than before
    screenshot(page, "zoomed")

    page.locator('.panel[data-key="loss"] .u-over').dblclick()
    page.wait_for_function("() => !window.trackd.panels.loss.zoomed")
    reset = page.evaluate("() => window.trackd.panels.loss")["runs"][f"long{STEPS}"]
    assert reset["points"] == full["points"]

    assert page.evaluate("() => window.trackd.panels.loss.yMax") >= 100  # the spike's scale
    page.check("input[name=ignore-outliers]")
    page.wait_for_function("() => window.trackd.panels.loss.yMax < 2")  # the rest, readable
    assert "outliers=0" in page.url


def _wait_for(condition: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s")


def test_a_running_runs_chart_and_state_update_live(page: Page, site: Site) -> None:
    release = site.workdir / "release-live"
    proc = log_runs(site.server, site.admin_key, site.workdir, "live", str(release))
    try:
        with api(site, site.admin_key) as client:

            def started() -> bool:
                got = client.get("/runs/admin/vision/live")
                return got.status_code == 200 and "train/loss" in got.json()["summary"]

            _wait_for(started)
            table = page.context.new_page()  # the project page, beside the run page
            sign_in(table, site, site.admin_key, "#/p/admin/vision")
            table.wait_for_selector('tr[data-run="live"][data-state="running"]')
            sign_in(page, site, site.admin_key, "#/r/admin/vision/live")
            assert page.inner_text("#run-state") == "running"
            first = drawn(page, "train/loss")["runs"]["live"]["points"]
            page.evaluate("() => { window.notReloaded = true }")
            page.wait_for_function(
                "n => window.trackd.panels['train/loss'].runs.live.points >= n + 5", arg=first
            )
            screenshot(page, "live")
            release.touch()
            page.wait_for_function(
                "() => document.querySelector('#run-state').textContent === 'finished'",
                timeout=20_000,
            )
            assert page.evaluate("() => window.notReloaded") is True
            table.wait_for_selector('tr[data-run="live"][data-state="finished"]', timeout=10_000)
            final = client.get("/runs/admin/vision/live").json()
        page.wait_for_function(
            "n => window.trackd.panels['train/loss'].runs.live.points === n",
            arg=final["last_step"] + 1,
        )
    finally:
        release.touch()
        finish_logging(proc)


def test_only_panels_on_screen_fetch_and_key_search_finds_the_rest(page: Page, site: Site) -> None:
    finish_logging(log_runs(site.server, site.admin_key, site.workdir, "many", "1", "60", "30"))
    sign_in(page, site, site.admin_key, "#/r/admin/many/many0")
    drawn(page, "m/k0")
    page.wait_for_timeout(500)  # time enough for any panel that was going to load
    states = page.evaluate("() => Object.values(window.trackd.panels).map(p => p.state)")
    assert len(states) == 60
    assert 0 < states.count("drawn") < 20, states  # the rest wait until they are scrolled to
    assert states.count("waiting") > 40
    page.fill("input[name=key-search]", "k59")
    assert page.locator(".panel:visible").count() == 1
    assert drawn(page, "m/k59")["runs"]["many0"]["points"] == 30


def drag(page: Page, key: str, start: float, end: float) -> None:
    """Drag across the panel of ``key`` from ``start`` to ``end`` (fractions of its width)."""
    box = page.locator(f'.panel[data-key="{key}"] .u-over').bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * start, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * end, y, steps=4)
    page.mouse.up()


def test_zoom_is_shared_by_the_panels_and_kept_in_the_address(page: Page, site: Site) -> None:
    sign_in(page, site, site.admin_key, "#/r/admin/vision/gamma")
    drawn(page, "train/loss")
    drawn(page, "val/acc")
    drag(page, "train/loss", 0.3, 0.6)
    both = "() => ['train/loss', 'val/acc'].every(k => window.trackd.panels[k]?.zoomed)"
    page.wait_for_function(both)
    loss = drawn(page, "train/loss")["runs"]["gamma"]
    acc = drawn(page, "val/acc")["runs"]["gamma"]
    assert (loss["minStep"], loss["maxStep"]) == (acc["minStep"], acc["maxStep"])
    assert 20 < loss["points"] < 60, loss  # about 30% of 120 steps
    assert "zoom=" in page.url
    page.reload()  # a link to the view opens it zoomed
    for key in ("train/loss", "val/acc"):  # panels load once scrolled near the viewport
        drawn(page, key)
    page.wait_for_function(both)
    assert drawn(page, "val/acc")["runs"]["gamma"]["minStep"] == acc["minStep"]
    page.locator('.panel[data-key="val/acc"] .u-over').dblclick()
    page.wait_for_function(
        "() => ['train/loss', 'val/acc'].every(k => window.trackd.panels[k]?.zoomed === false)"
    )
    assert "zoom=" not in page.url
    assert drawn(page, "train/loss")["runs"]["gamma"]["points"] == 120


def test_panels_can_be_removed_and_added_back(page: Page, site: Site) -> None:
    sign_in(page, site, site.admin_key, "#/r/admin/vision/gamma")
    drawn(page, "val/acc")
    page.click('.panel[data-key="val/acc"] button.remove')
    assert page.locator('.panel[data-key="val/acc"]').is_hidden()
    assert "hide=val%2Facc" in page.url
    page.reload()  # the address keeps it removed: it is never fetched
    drawn(page, "train/loss")
    assert page.locator('.panel[data-key="val/acc"]').is_hidden()
    assert page.evaluate("() => window.trackd.panels['val/acc'].state") == "waiting"
    page.select_option("select[name=add-panel]", "val/acc")
    assert drawn(page, "val/acc")["runs"]["gamma"]["points"] == 120
    assert "hide=" not in page.url


def test_grouped_runs_draw_as_a_mean_line_in_a_min_max_band(page: Page, site: Site) -> None:
    sign_in(page, site, site.admin_key, "#/p/admin/vision?runs=alpha,beta,gamma&by=group")
    acc = drawn(page, "val/acc")
    assert set(acc["lines"]) == {"group:g1", "group:g2"}
    # val/acc is step/steps: alpha (50 steps) and beta (80) end at 49/50 and 79/80; their
    # mean runs over every step either logged, and its last point is beta's alone
    assert acc["lines"]["group:g1"]["drawn"] == 80
    assert acc["lines"]["group:g1"]["lastValue"] == pytest.approx(79 / 80)
    assert acc["lines"]["group:g1"]["maxValue"] == pytest.approx(79 / 80)
    assert acc["lines"]["group:g2"]["drawn"] == 120
    assert acc["runs"]["alpha"]["points"] == 50 and acc["runs"]["alpha"]["drawn"] == 0
    # the band spans alpha and beta where both logged: widest at step 49, 49/50 - 49/80
    assert acc["lines"]["group:g1"]["widestBand"] == pytest.approx(49 / 50 - 49 / 80)
    assert acc["lines"]["group:g2"]["widestBand"] == 0  # one run: no spread
    # the table's swatches are the groups' colours too
    swatches = page.eval_on_selector_all(
        "#runs-table tr[data-run] .swatch[style]",
        "es => Object.fromEntries(es.map(e => [e.closest('tr').dataset.run, e.style.background]))",
    )
    assert swatches["alpha"] == swatches["beta"] != swatches["gamma"]
    screenshot(page, "grouped-charts")
