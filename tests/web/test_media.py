"""Media on the run page in a real browser: images with boxes (score threshold, class
toggles) and a mask overlay, one step slider driving every panel, a table with image cells,
``watch()``'s gradient histograms as a heat map, and a link that restores the same view.

The run is logged for real (``_log_runs.py media``: numpy images, a torch model watched);
the page fetches every image with the key in a header, never in a URL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests._support.server import running_server

from . import _log_runs as logged
from ._logging import finish_logging, log_runs
from .conftest import STATIC, Site, api, screenshot
from .test_pages import sign_in

Page = Any
RUN = "#/r/admin/media/pics"


@pytest.fixture(scope="module")
def pics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A server holding only the media run (the project of the other modules is not needed)."""
    if not STATIC.is_file():
        pytest.fail(f"the web UI is not built ({STATIC} is missing); run `make web`")
    workdir = tmp_path_factory.mktemp("media")
    with running_server(workdir / "server") as server:
        finish_logging(log_runs(server, server.admin_key, workdir, "media"))
        yield Site(server, server.admin_key, "", workdir)


def media(page: Page, key: str, **want: Any) -> dict[str, Any]:
    """The media panel of ``key`` once it shows what ``want`` names (e.g. ``step=0``)."""
    page.wait_for_function(
        "([k, want]) => { const m = window.trackd.media[k];"
        " return m && Object.entries(want).every(([f, v]) => m[f] === v) }",
        arg=[key, want],
    )
    return dict(page.evaluate("k => window.trackd.media[k]", key))


def mask_pixel(page: Page, x: int, y: int) -> list[int]:
    """The RGBA of the examples panel's mask overlay at image pixel (x, y)."""
    return list(
        page.evaluate(
            "([x, y]) => [...document.querySelector('.media-panel[data-key=examples] canvas.masks')"
            ".getContext('2d').getImageData(x, y, 1, 1).data]",
            [x, y],
        )
    )


def test_images_with_boxes_and_a_mask_and_the_step_slider(page: Page, pics: Site) -> None:
    blobs: list[str] = []
    page.on("request", lambda r: "/blobs/" in r.url and blobs.append(r.url))
    sign_in(page, pics, pics.admin_key, RUN)
    last = logged.MEDIA_STEPS - 1
    shown = media(page, "examples", step=last)
    assert (shown["kind"], shown["images"], shown["boxes"]) == ("images", 1, 2)
    height, width = logged.MEDIA_SIZE
    assert shown["maskPixels"] == height * width  # every pixel has a class, background too
    assert set(shown["classes"]) >= {"boxes:predictions:1", "boxes:predictions:2", "masks:truth:1"}
    assert page.inner_text(".media-panel[data-key=examples] figcaption") == f"step {last}"
    assert page.locator(".media-panel[data-key=examples] svg.boxes rect").count() == 2
    assert "cat" in page.text_content(".media-panel[data-key=examples] svg.boxes")
    # the mask is drawn in the class's colour: cat (class 1) on the left, dog bottom right
    cat, dog = mask_pixel(page, 2, 2), mask_pixel(page, width - 2, height - 2)
    assert cat[3] > 0 and dog[3] > 0 and cat[:3] != dog[:3]
    screenshot(page, "media")

    # hide the background and the cat mask: only the dog quarter stays coloured
    page.uncheck("input[data-class='masks:truth:0']")
    page.uncheck("input[data-class='masks:truth:1']")
    shown = media(page, "examples", maskPixels=logged.DOG_PIXELS)
    assert mask_pixel(page, 2, 2)[3] == 0 and mask_pixel(page, width - 2, height - 2)[3] > 0
    # the score threshold hides the dog box (score 0.3), keeps the cat's (0.9)
    page.locator("input[name=score-threshold]").fill("0.5")
    shown = media(page, "examples", boxes=1)
    assert page.locator(".media-panel[data-key=examples] svg.boxes rect").count() == 1

    # the slider drives every panel: step 0's image (another file)
    first_file = page.get_attribute(".media-panel[data-key=examples] figure", "data-sha256")
    page.locator("input[name=media-step]").fill("0")
    shown = media(page, "examples", step=0)
    assert page.inner_text(".media-panel[data-key=examples] figcaption") == "step 0"
    assert page.get_attribute(".media-panel[data-key=examples] figure", "data-sha256") != first_file
    assert (shown["boxes"], shown["maskPixels"]) == (1, logged.DOG_PIXELS)  # the view is kept
    assert media(page, "samples")["step"] is None  # the table was logged after step 0
    screenshot(page, "media-step-0")

    # a link restores the same view: step, threshold, hidden classes
    assert "mstep=0" in page.url and "thr=0.5" in page.url and "mhide=" in page.url
    page.reload()
    again = media(page, "examples", step=0, boxes=1)
    assert again["maskPixels"] == logged.DOG_PIXELS
    assert page.locator("input[name=media-step]").input_value() == "0"
    assert page.is_checked("input[data-class='masks:truth:2']")
    assert not page.is_checked("input[data-class='masks:truth:1']")
    # every image came through the run's blob route, with the key in a header, not the URL
    assert blobs and all(pics.admin_key not in url for url in blobs)


def test_a_table_with_image_cells(page: Page, pics: Site) -> None:
    sign_in(page, pics, pics.admin_key, RUN)
    table = media(page, "samples", kind="table")
    assert (table["tableRows"], table["images"], table["step"]) == (2, 2, logged.MEDIA_STEPS)
    cells = page.locator(".media-panel[data-key=samples] tbody tr").all_inner_texts()
    assert [c.split("\t")[::2] for c in cells] == [["0", "cat"], ["1", "dog"]]
    assert page.locator(".media-panel[data-key=samples] td.image-cell img").count() == 2


def test_watched_gradients_show_as_a_heat_map_over_steps(page: Page, pics: Site) -> None:
    with api(pics, pics.admin_key) as client:
        logged_steps = client.get(
            "/runs/admin/media/pics/media", params={"keys": "gradients/weight"}
        )
        assert logged_steps.status_code == 200, logged_steps.text
        points = logged_steps.json()["media"]["gradients/weight"]
    assert len(points) == logged.WATCH_STEPS
    bins = [p["value"]["bins"] for p in points]
    sign_in(page, pics, pics.admin_key, RUN)
    heat = media(page, "gradients/weight", kind="histogram")["heat"]
    assert heat["steps"] == logged.WATCH_STEPS
    assert heat["lo"] == min(b[0] for b in bins) and heat["hi"] == max(b[-1] for b in bins)
    assert heat["filled"] >= logged.WATCH_STEPS  # every step has counts somewhere
    assert media(page, "gradients/bias", kind="histogram")["heat"]["steps"] == logged.WATCH_STEPS
    # the histograms are not charted as lines
    assert "gradients/weight" not in page.evaluate("() => Object.keys(window.trackd.panels)")
    page.locator(".media-panel[data-key='gradients/weight']").scroll_into_view_if_needed()
    screenshot(page, "media-heat-map")
