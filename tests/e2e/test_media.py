"""Media end to end: raw values -> daemon (PNG, content addressing, blob upload) -> server
(blob store, run_media) -> read API, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import trackd
from PIL import Image
from trackd._wire import records as p

from tests._support.media import decode_png, log_raw, raw_image, raw_mask
from tests._support.objstore import STORES, LocalStore, S3Store
from tests._support.procs import daemon_dir, daemon_pid, run_script, wait_for
from tests._support.server import ServerProcess

DBS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture
def online(upstream: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> ServerProcess:
    monkeypatch.setenv("TRACKD_BASE_URL", upstream.url)
    monkeypatch.setenv("TRACKD_API_KEY", upstream.admin_key)
    monkeypatch.setenv("TRACKD_BATCH_SECONDS", "0.2")
    return upstream


@pytest.fixture
def api(upstream: ServerProcess) -> Iterator[trackd.Api]:
    with trackd.Api(host=upstream.url, api_key=upstream.admin_key) as reader:
        yield reader


def _uploads_logged() -> int:
    text = (daemon_dir() / "daemon.log").read_text()
    return text.count("uploaded blob")


def _pixels(seed: int, shape: tuple[int, ...] = (24, 32, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize(("upstream", "store"), STORES, indirect=True)
def test_images_masks_tables_read_back_exactly(online: ServerProcess, api: trackd.Api) -> None:
    rgb, gray, rgba = _pixels(1), _pixels(2, (24, 32, 1)), _pixels(3, (24, 32, 4))
    classes = (np.arange(24 * 32).reshape(24, 32) % 5).astype(np.uint8)
    boxes = {
        "predictions": {
            "box_data": [
                {
                    "position": {"minX": 1, "maxX": 9, "minY": 2, "maxY": 8},
                    "domain": "pixel",
                    "class_id": 1,
                    "box_caption": "cat",
                    "scores": {"p": 0.9},
                },
                {"position": {"middle": [0.5, 0.5], "width": 0.2, "height": 0.1}, "class_id": 2},
            ],
            "class_labels": {"1": "cat", "2": "dog"},
        }
    }
    run = trackd.init(project="media")
    log_raw(
        run,
        {
            "img": raw_image(
                rgb,
                caption="rgb",
                boxes=boxes,
                masks={"truth": raw_mask(classes, {"0": "bg", "4": "x"})},
            ),
            "many": {"_type": "images", "items": [raw_image(gray), raw_image(rgba)]},
            "table": {
                "_type": "table",
                "columns": ["id", "picture"],
                "data": [[1, raw_image(rgb)], [2, None]],
            },
            "loss": 0.5,
        },
    )
    hist = {"_type": "histogram", "bins": [0.0, 1.0, 2.0], "values": [3, 4]}
    log_raw(run, {"hist": hist}, kind=p.HISTORY)  # needs no daemon work: a plain row
    run.finish()

    api_run = api.run(f"admin/media/{run.id}")
    [img] = api_run.media("img")
    value = img["value"]
    assert img["step"] == 0 and value["_type"] == "image-file" and value["caption"] == "rgb"
    assert (value["width"], value["height"]) == (32, 24) and value["boxes"] == boxes
    assert np.array_equal(decode_png(api_run.fetch(value["url"])), rgb)
    mask = value["masks"]["truth"]
    assert mask["class_labels"] == {"0": "bg", "4": "x"}
    assert np.array_equal(decode_png(api_run.fetch(mask["url"]))[:, :, 0], classes)
    [many] = api_run.media("many")
    assert np.array_equal(decode_png(api_run.fetch(many["value"]["items"][0]["url"])), gray)
    assert np.array_equal(decode_png(api_run.fetch(many["value"]["items"][1]["url"])), rgba)
    [table] = api_run.media("table")
    cell = table["value"]["data"][0][1]
    assert np.array_equal(decode_png(api_run.fetch(cell["url"])), rgb)
    assert table["value"]["data"][1] == [2, None]
    [hist] = api_run.media("hist")
    assert hist["step"] == 1 and hist["value"]["values"] == [3, 4]
    rows = api_run.history(samples=None, pandas=False)
    assert rows[0]["loss"] == 0.5 and rows[0]["img"]["sha256"] == value["sha256"]


@pytest.mark.parametrize("store", ["local", "s3"], indirect=True)
def test_the_same_image_is_stored_and_uploaded_once(
    online: ServerProcess, api: trackd.Api, store: LocalStore | S3Store
) -> None:
    same = _pixels(7)
    run = trackd.init(project="media")
    for _ in range(5):
        log_raw(run, {"img": raw_image(same)})
    run.finish()
    media = api.run(f"admin/media/{run.id}").media("img")
    assert [m["step"] for m in media] == [0, 1, 2, 3, 4]
    assert len({m["value"]["sha256"] for m in media}) == 1
    assert len(store.objects()) == 1
    assert _uploads_logged() == 1
    assert len(list((Path(run.dir) / "media").glob("*.png"))) == 1


@pytest.mark.parametrize("upstream", ["sqlite"], indirect=True)
def test_kill_9_of_the_daemon_while_images_are_in_flight(
    online: ServerProcess, api: trackd.Api, store: LocalStore
) -> None:
    images = [_pixels(100 + i, (64, 64, 3)) for i in range(40)]
    run = trackd.init(project="media")
    for pixels in images[:20]:
        log_raw(run, {"img": raw_image(pixels)})
    wait_for(lambda: _uploads_logged() >= 1, 30, "the first blob upload")
    os.kill(daemon_pid(), signal.SIGKILL)
    for pixels in images[20:]:
        log_raw(run, {"img": raw_image(pixels)})
    run.finish()
    api_run = api.run(f"admin/media/{run.id}")
    media = api_run.media("img")
    assert [m["step"] for m in media] == list(range(40))
    for m, pixels in zip(media, images, strict=True):
        assert np.array_equal(decode_png(api_run.fetch(m["value"]["url"])), pixels)
    assert len(store.objects()) == 40
    assert store.leftovers() == []


@pytest.mark.parametrize("upstream", ["sqlite"], indirect=True)
def test_images_past_the_queue_limit_spill_in_order_and_arrive_once(
    online: ServerProcess, api: trackd.Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows of images while the daemon is stopped: past the queue limit they go on the spill
    file's in-memory tail (written by the I/O thread, or by log() when the tail is full),
    between scalar rows written at once; the daemon's kill -9 afterwards loses nothing."""
    monkeypatch.setenv("TRACKD_QUEUE_BYTES", str(64 * 1024))
    monkeypatch.setattr("trackd._spill.TAIL_BYTES", 100_000)  # about 8 rows: it fills often
    images = [_pixels(300 + i, (64, 64, 3)) for i in range(60)]
    run = trackd.init(project="media")
    pid = daemon_pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        for i, pixels in enumerate(images):
            trackd.log({"img": trackd.Image(pixels), "i": i})
            trackd.log({"between": i})
        assert list(Path(run.dir).glob("spill-*.trackd"))
    finally:
        os.kill(pid, signal.SIGCONT)
    os.kill(pid, signal.SIGKILL)
    run.finish()
    api_run = api.run(f"admin/media/{run.id}")
    media = api_run.media("img")
    assert [m["step"] for m in media] == list(range(0, 120, 2))
    for m, pixels in zip(media, images, strict=True):
        assert np.array_equal(decode_png(api_run.fetch(m["value"]["url"])), pixels)
    rows = api_run.history(samples=None, pandas=False)
    assert [(r["_step"], r.get("i"), r.get("between")) for r in rows] == [
        (s, s // 2 if s % 2 == 0 else None, s // 2 if s % 2 else None) for s in range(120)
    ]


@pytest.mark.parametrize("upstream", DBS, indirect=True)
def test_another_entity_cannot_read_a_run_blob_by_its_hash(
    online: ServerProcess, api: trackd.Api
) -> None:
    run = trackd.init(project="media")
    log_raw(run, {"img": raw_image(_pixels(9))})
    run.finish()
    [img] = api.run(f"admin/media/{run.id}").media("img")
    sha = img["value"]["sha256"]
    with online.client() as admin:
        key = admin.post("/admin/users", json={"name": "mallory"}).json()["api_key"]
    with online.client(key) as mallory:
        assert mallory.get(f"/runs/admin/media/{run.id}/blobs/{sha}").status_code == 403
        assert mallory.get(f"/runs/admin/media/{run.id}/media").status_code == 403
        # her own run: a hash names no blob she uploaded
        assert mallory.head(f"/runs/mallory/p/own/blobs/{sha}").status_code == 404
        fake = mallory.put(f"/runs/mallory/p/own/blobs/{sha}", content=b"not the image")
        assert fake.status_code == 400 and "hash to" in fake.json()["error"]["message"]
        assert mallory.get(f"/runs/mallory/p/own/blobs/{sha}").status_code == 404


def _saved(server: ServerProcess, run_id: str) -> dict[str, str]:
    with server.client() as admin:
        answer = admin.get(f"/runs/admin/media/{run_id}/files")
        if answer.status_code == 404:
            return {}
        return {f["name"]: f.get("sha256") for f in answer.json()["files"]}


def _download(server: ServerProcess, run_id: str, name: str) -> bytes:
    with server.client() as admin:
        answer = admin.get(f"/runs/admin/media/{run_id}/files/{name}")
        answer.raise_for_status()
        return answer.content


@pytest.mark.parametrize(("upstream", "store"), STORES, indirect=True)
def test_save_live_now_and_end(online: ServerProcess, api: trackd.Api, tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "ckpt").mkdir(parents=True)
    live, now = work / "ckpt" / "live.txt", work / "now.txt"
    live.write_text("v1")
    now.write_text("first")
    run = trackd.init(project="media")
    assert run.save(str(work / "ckpt" / "*.txt")) == ["live.txt"]
    assert trackd.save(str(now), base_path=str(tmp_path), policy="now") == ["work/now.txt"]
    trackd.save(str(work / "end.bin"), policy="end")
    wait_for(lambda: "live.txt" in _saved(online, run.id), 30, "the live file on the server")
    assert _download(online, run.id, "live.txt") == b"v1"
    now.write_text("changed after save(now)")
    live.write_text("v2, longer")
    wait_for(lambda: _download(online, run.id, "live.txt") == b"v2, longer", 30, "live v2")
    live.write_text("v3")
    (work / "end.bin").write_bytes(os.urandom(3 << 20))  # large: streams through
    run.finish()
    assert _download(online, run.id, "live.txt") == b"v3"
    assert _download(online, run.id, "work/now.txt") == b"first"
    assert _download(online, run.id, "end.bin") == (work / "end.bin").read_bytes()
    api_run = api.run(f"admin/media/{run.id}")
    path = api_run.file("live.txt").download(tmp_path / "restore")
    assert path.read_bytes() == b"v3"
    with online.client() as admin:
        key = admin.post("/admin/users", json={"name": "eve"}).json()["api_key"]
    answer = httpx.get(
        f"{online.url}/api/v1/runs/admin/media/{run.id}/files/live.txt",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 403


@pytest.mark.slow
@pytest.mark.parametrize("upstream", ["sqlite"], indirect=True)
def test_one_runs_media_do_not_hold_up_another_runs_upload(
    online: ServerProcess, api: trackd.Api, tmp_path: Path
) -> None:
    # one row whose preparation takes seconds: a table of 300 small images, each its own file
    cells = [[i, raw_image(_pixels(1000 + i, (64, 64, 3)))] for i in range(300)]
    run = trackd.init(project="media")
    log_raw(run, {"table": {"_type": "table", "columns": ["i", "img"], "data": cells}})
    wait_for(lambda: _uploads_logged() >= 1, 30, "the table's first image upload")
    other = run_script(
        "import trackd\n"
        "r = trackd.init(project='media')\n"
        "r.log({'x': 1.0})\n"
        "r.finish()\n"
        "print(r.id)\n",
        tmp_path,
    )
    uploaded_then = _uploads_logged()
    assert other.returncode == 0 and not other.stderr, other.stderr
    other_run = api.run(f"admin/media/{other.stdout.split()[-1]}")
    assert other_run.state == "finished" and other_run.summary["x"] == 1.0
    assert uploaded_then < len(cells)  # the other run's finish() did not wait for the table
    run.finish()
    [table] = api.run(f"admin/media/{run.id}").media("table")
    assert len({row[1]["sha256"] for row in table["value"]["data"]}) == len(cells)


def _known(api: trackd.Api, run_id: str) -> bool:
    try:
        api.run(f"admin/media/{run_id}")
    except trackd.errors.CommError:
        return False
    return True


@pytest.mark.parametrize("upstream", ["sqlite"], indirect=True)
def test_an_offline_run_with_images_and_files_syncs_once(
    upstream: ServerProcess,
    api: trackd.Api,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    store: LocalStore,
) -> None:
    pixels = _pixels(42)
    (tmp_path / "notes.txt").write_text("offline notes")
    run = trackd.init(project="media", mode="offline")
    log_raw(run, {"img": raw_image(pixels)})
    run.save(str(tmp_path / "notes.txt"), policy="now")
    run.finish()
    monkeypatch.setenv("TRACKD_BASE_URL", upstream.url)
    monkeypatch.setenv("TRACKD_API_KEY", upstream.admin_key)
    for _ in range(2):  # a second sync uploads nothing again
        result = subprocess.run(
            [sys.executable, "-m", "trackd", "sync"],
            env=dict(os.environ),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
    api_run = api.run(f"admin/media/{run.id}")
    [img] = api_run.media("img")
    assert np.array_equal(decode_png(api_run.fetch(img["value"]["url"])), pixels)
    assert api_run.file("notes.txt").download(tmp_path / "got").read_text() == "offline notes"
    assert len(store.objects()) == 2


@pytest.mark.parametrize("upstream", DBS, indirect=True)
def test_trackd_image_online_reads_back_exactly(
    online: ServerProcess, api: trackd.Api, tmp_path: Path
) -> None:
    torch = pytest.importorskip("torch")
    rgb, classes = _pixels(5), (np.arange(24 * 32).reshape(24, 32) % 3).astype(np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(_pixels(6)).save(path)
    images = torch.rand(4, 3, 8, 8)
    run = trackd.init(project="media")
    trackd.log(
        {
            "img": trackd.Image(rgb, caption="c", masks={"gt": {"mask_data": classes}}),
            "from_file": trackd.Image(str(path)),
            "grid": trackd.Image(images.float()),
            "several": [trackd.Image(rgb), trackd.Image(rgb)],
            "masks": {"true": trackd.Image(classes)},
            "loss": torch.tensor(0.5),
        }
    )
    trackd.finish()
    api_run = api.run(f"admin/media/{run.id}")
    value = api_run.media("img")[0]["value"]
    assert np.array_equal(decode_png(api_run.fetch(value["url"])), rgb)
    mask = decode_png(api_run.fetch(value["masks"]["gt"]["url"]))[:, :, 0]
    assert np.array_equal(mask, classes) and value["caption"] == "c"
    from_file = api_run.media("from_file")[0]["value"]
    assert api_run.fetch(from_file["url"]) == path.read_bytes()  # kept as it was
    grid = decode_png(api_run.fetch(api_run.media("grid")[0]["value"]["url"]))
    assert grid.shape == (12, 42, 3)
    several = api_run.media("several")[0]["value"]["items"]
    assert [s["sha256"] for s in several] == [value["sha256"]] * 2  # one file, stored once
    true = decode_png(api_run.fetch(api_run.media("masks.true")[0]["value"]["url"]))
    assert true.shape[:2] == classes.shape
    assert api_run.history(samples=None, pandas=False)[0]["loss"] == 0.5
