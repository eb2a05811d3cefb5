"""Logging images: training-thread time per ``log()`` and images/s end to end, as JSON.

Side by side in one run, each in a fresh interpreter, with one 256x256x3 uint8 image a call
(a smooth picture with noise, so PNG has work to do; every image differs):

- ``floor``: msgpack-pack the raw image value and send it NOBLOCK on a ZeroMQ DEALER to a
  draining ROUTER in another process: the least a logger that ships pixels can do;
- ``pack_kept``: the floor's msgpack copy, kept in a list instead of sent and freed: the
  cost of holding each copy until it is durable (fresh memory, page faults), which trackd
  pays and the floor does not;
- ``pil_png``: PIL encoding the same image to PNG in-process (what a logger that encodes on
  the training thread pays), at the daemon's zlib level;
- ``trackd_log``: ``trackd.log({"img": trackd.Image(pixels)})`` through the real spawned
  daemon (offline: the training thread only);
- ``end_to_end``: the same, online to a real server (SQLite): images/s from the first
  ``log()`` until ``finish()`` returns, which is when the server holds every row and file;
  the run's media are read back and counted;
- ``wandb_offline``: ``wandb.Image`` + ``run.log`` offline, when wandb is installed.

Usage: ``python bench/media.py [--calls 2000] [--images 400]``. Targets (issue 8): within
2x of the floor, under a tenth of ``pil_png``, 20x less than wandb.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _latency  # bench/ is on sys.path when a bench script runs
import msgpack
import numpy as np
import zmq
from _latency import percentiles

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests._support.media import raw_image  # noqa: E402 - the floor sends the same value
from tests._support.server import running_server  # noqa: E402

SHAPE = (256, 256, 3)
RECEIVER = """
import sys, zmq
ctx = zmq.Context(); s = ctx.socket(zmq.ROUTER); s.bind(sys.argv[1])
print("ready", flush=True)
while True:
    parts = s.recv_multipart()
    if parts[-1] == b"stop":
        break
"""


def _images(count: int) -> list[np.ndarray]:
    """``count`` different images (a few kept, shifted per call: cheap to make)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    base = np.stack([x, y, (x + y) // 2], axis=-1).astype(np.int16)
    noisy = [(base + rng.integers(-12, 12, SHAPE)).clip(0, 255).astype(np.uint8) for _ in range(8)]
    out = []
    for i in range(count):
        img = noisy[i % 8].copy()
        img.reshape(-1)[:8] = np.frombuffer(i.to_bytes(8, "little"), np.uint8)
        out.append(img)
    return out


def measure(call: Callable[[np.ndarray], Any], images: list[np.ndarray]) -> dict[str, float]:
    samples = [0] * len(images)
    clock = time.perf_counter_ns
    start = clock()
    for i, img in enumerate(images):
        t0 = clock()
        call(img)
        samples[i] = clock() - t0
    total = (clock() - start) / 1e9
    return {**percentiles(samples), "calls_per_s": round(len(images) / total, 1)}


def bench_floor(calls: int, tmp: str) -> dict[str, Any]:
    endpoint = f"ipc://{tmp}/floor.sock"
    proc = subprocess.Popen(
        [sys.executable, "-c", RECEIVER, endpoint],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.connect(endpoint)
    pack = msgpack.Packer(use_bin_type=True).pack
    try:
        images = _images(calls)
        result = measure(lambda img: sock.send(pack({"img": raw_image(img)}), zmq.NOBLOCK), images)
        sock.send(b"stop")
        proc.wait(timeout=60)
    finally:
        proc.kill()
        sock.close(linger=0)
        ctx.term()
    return result


def bench_pack_kept(calls: int, tmp: str) -> dict[str, Any]:
    """The floor's msgpack copy, kept (as a logger that must not lose it until the daemon
    has it on disk keeps it) instead of freed at once: each copy lands in fresh memory."""
    pack = msgpack.Packer(use_bin_type=True).pack
    kept: list[bytes] = []
    return measure(lambda img: kept.append(pack({"img": raw_image(img)})), _images(calls))


def bench_pil_png(calls: int, tmp: str) -> dict[str, Any]:
    from PIL import Image
    from trackd.daemon._media import PNG_LEVEL

    def encode(img: np.ndarray) -> None:
        Image.fromarray(img).save(io.BytesIO(), format="PNG", compress_level=PNG_LEVEL)

    return dict(measure(encode, _images(min(calls, 300))), compress_level=PNG_LEVEL)


def _env(tmp: str, **extra: str) -> None:
    os.environ.update(
        TRACKD_DIR=f"{tmp}/runs",
        TRACKD_DAEMON_DIR=f"{tmp}/d",
        TRACKD_SILENT="1",
        TRACKD_ENVIRONMENT_FILES="0",  # images only: no requirements.txt blob beside them
        **extra,
    )


def bench_trackd_log(calls: int, tmp: str) -> dict[str, Any]:
    _env(tmp, TRACKD_MODE="offline", TRACKD_FINISH_TIMEOUT="600")
    import trackd

    run = trackd.init(project="bench")
    result = measure(lambda img: trackd.log({"img": trackd.Image(img)}), _images(calls))
    t0 = time.perf_counter()
    run.finish()
    result["finish_s"] = round(time.perf_counter() - t0, 3)
    return result


def bench_end_to_end(images: int, tmp: str) -> dict[str, Any]:
    with running_server(Path(tmp) / "server") as server:
        _env(tmp, TRACKD_BASE_URL=server.url, TRACKD_API_KEY=server.admin_key)
        os.environ["TRACKD_FINISH_TIMEOUT"] = "600"
        import trackd

        pictures = _images(images)
        run = trackd.init(project="bench")
        start = time.perf_counter()
        for img in pictures:
            trackd.log({"img": trackd.Image(img)})
        logged = time.perf_counter()
        run.finish()
        done = time.perf_counter()
        with trackd.Api(host=server.url, api_key=server.admin_key) as api:
            stored = len(api.run(f"admin/bench/{run.id}").media("img"))
        blobs = [f for f in (Path(tmp) / "server" / "blobs").glob("??/*") if f.is_file()]
    assert stored == images and len(blobs) == images, (stored, len(blobs))
    return {
        "images": images,
        "images_per_s": round(images / (done - start), 1),
        "log_s": round(logged - start, 3),
        "total_s": round(done - start, 3),
        "stored_on_server": stored,
        "png_mb_on_server": round(sum(f.stat().st_size for f in blobs) / 2**20, 1),
    }


def bench_wandb(calls: int, tmp: str) -> dict[str, Any] | None:
    try:
        import wandb
    except ImportError:
        return None
    run = wandb.init(mode="offline", dir=tmp, project="bench", settings=wandb.Settings(silent=True))
    result = measure(lambda img: run.log({"img": wandb.Image(img)}), _images(calls))
    run.finish()
    return result


SECTIONS: dict[str, Callable[[int, str], Any]] = {
    "floor": bench_floor,
    "pack_kept": bench_pack_kept,
    "pil_png": bench_pil_png,
    "trackd_log": bench_trackd_log,
    "end_to_end": bench_end_to_end,
    "wandb_offline": bench_wandb,
}


def run_section(name: str, count: int) -> Any:
    return _latency.run_section(__file__, name, count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--images", type=int, default=400, help="end to end")
    parser.add_argument("--only", choices=sorted(SECTIONS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        with tempfile.TemporaryDirectory(prefix="trkm-") as tmp:
            print(json.dumps(SECTIONS[args.only](args.calls, tmp)))
        return
    out: dict[str, Any] = {"image": list(SHAPE), "cpus": os.cpu_count()}
    for name in ("floor", "pack_kept", "pil_png", "trackd_log", "wandb_offline"):
        out[name] = run_section(name, args.calls)
    out["end_to_end"] = run_section("end_to_end", args.images)
    t, f, png = out["trackd_log"], out["floor"], out["pil_png"]
    if "p50_us" in t and "p50_us" in f and "p50_us" in png:
        out["ratios"] = {
            "trackd_p50_vs_floor": round(t["p50_us"] / f["p50_us"], 2),
            "pack_kept_p50_vs_floor": round(out["pack_kept"]["p50_us"] / f["p50_us"], 2),
            "trackd_p50_vs_pil_png": round(t["p50_us"] / png["p50_us"], 3),
        }
        wb = out.get("wandb_offline")
        if wb and "p50_us" in wb:
            out["ratios"]["wandb_p50_vs_trackd"] = round(wb["p50_us"] / t["p50_us"], 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
