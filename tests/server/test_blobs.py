"""Blobs through a run, saved files and the media read API, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from trackd._wire import records as p

from tests._support.objstore import STORES, LocalStore, S3Store
from tests._support.server import ServerProcess
from tests.server._batches import history, ingest, run_start

RUN = "/runs/admin/proj/b1"
# each test on the server's own directory (SQLite and PostgreSQL) and on a bucket of moto's
# S3 emulator (the store does not depend on the database: tests/server/test_file_store.py
# runs S3 on PostgreSQL)
pytestmark = pytest.mark.parametrize(("db_url", "store"), STORES, indirect=True)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_put_checks_the_hash_and_stores_once(
    store: LocalStore | S3Store, admin: httpx.Client
) -> None:
    data = bytes(range(256)) * 5000  # over 1 MiB: written in several pieces
    sha = _sha(data)
    assert admin.head(f"{RUN}/blobs/{sha}").status_code == 404  # no run yet, no blob
    wrong = admin.put(f"{RUN}/blobs/{sha}", content=data + b"!")
    assert wrong.status_code == 400 and f"not to {sha}" in wrong.json()["error"]["message"]
    assert store.objects() == [] and store.leftovers() == []
    put = admin.put(f"{RUN}/blobs/{sha}", content=data)  # creates the run: a blob may come first
    assert put.status_code == 200, put.text
    assert put.json() == {"sha256": sha, "size": len(data)}
    assert admin.head(f"{RUN}/blobs/{sha}").status_code == 200
    assert admin.get(f"{RUN}/blobs/{sha}").content == data
    written = store.versions(sha)
    assert admin.put(f"/runs/admin/proj/b2/blobs/{sha}", content=data).status_code == 200
    assert admin.get(f"/runs/admin/proj/b2/blobs/{sha}").content == data
    assert store.objects() == [sha]  # shared by the two runs, stored once
    assert store.versions(sha) == written  # found stored: not written again
    assert store.leftovers() == []
    bad = admin.get(f"{RUN}/blobs/not-a-hash")
    assert bad.status_code == 400 and "64 lowercase hex" in bad.json()["error"]["message"]


def test_a_hash_opens_only_blobs_the_run_holds(server: ServerProcess, admin: httpx.Client) -> None:
    data = b"secret weights"
    sha = _sha(data)
    admin.put(f"{RUN}/blobs/{sha}", content=data).raise_for_status()
    ingest(admin, "other", [run_start("other")]).raise_for_status()
    other = admin.get(f"/runs/admin/proj/other/blobs/{sha}")
    assert other.status_code == 404 and "not part of this run" in other.json()["error"]["message"]
    key = admin.post("/admin/users", json={"name": "bob"}).json()["api_key"]
    with server.client(key) as bob:
        assert bob.get(f"{RUN}/blobs/{sha}").status_code == 403
        assert bob.head(f"{RUN}/blobs/{sha}").status_code == 403
        assert bob.put(f"{RUN}/blobs/{sha}", content=data).status_code == 403
        assert bob.get(f"/runs/bob/proj/mine/blobs/{sha}").status_code == 404


def test_saved_files_are_listed_downloaded_and_repointed(admin: httpx.Client) -> None:
    v1, v2 = b"version one", b"version two"
    for data in (v1, v2):
        admin.put(f"{RUN}/blobs/{_sha(data)}", content=data).raise_for_status()
    saved = p.File(p.FILE, "b1", 2, "ckpt/model.pt", "/train/ckpt/model.pt", "live", _sha(v1), 11)
    ingest(admin, "b1", [run_start("b1"), saved]).raise_for_status()
    listing = admin.get(f"{RUN}/files").json()["files"]
    assert [(f["name"], f["size"], f["sha256"]) for f in listing] == [
        ("ckpt/model.pt", 11, _sha(v1))
    ]
    assert admin.get(f"{RUN}/files/ckpt/model.pt").content == v1
    body = {"sha256": _sha(v2), "size": 11}
    for _ in range(2):  # idempotent
        moved = admin.put(f"{RUN}/saved-files/ckpt/model.pt", json=body)
        assert moved.status_code == 200, moved.text
    assert admin.get(f"{RUN}/files/ckpt/model.pt").content == v2
    unknown = admin.put(f"{RUN}/saved-files/x.pt", json={"sha256": "cd" * 32, "size": 1})
    assert unknown.status_code == 404
    bad_name = admin.put(f"{RUN}/saved-files/a%5Cb", json=body)
    assert bad_name.status_code == 400 and "not allowed" in bad_name.json()["error"]["message"]


def test_a_saved_file_whose_blob_never_came_is_a_clear_409(admin: httpx.Client) -> None:
    saved = p.File(p.FILE, "b1", 2, "model.pt", "/m.pt", "now", "ef" * 32, 5)
    ingest(admin, "b1", [run_start("b1"), saved]).raise_for_status()
    answer = admin.get(f"{RUN}/files/model.pt")
    assert answer.status_code == 409 and "never uploaded" in answer.json()["error"]["message"]


def test_media_by_key_and_step_with_urls(admin: httpx.Client) -> None:
    png = b"\x89PNG\r\n\x1a\n fake"
    sha = _sha(png)
    admin.put(f"{RUN}/blobs/{sha}", content=png).raise_for_status()
    image = {
        "_type": "image-file",
        "sha256": sha,
        "size": len(png),
        "format": "png",
        "width": 1,
        "height": 1,
        "caption": "c",
        "masks": {"m": {"sha256": sha, "size": len(png), "format": "png"}},
    }
    hist = {"_type": "histogram", "bins": [0.0, 1.0], "values": [2]}
    records = [run_start("b1")]
    records += [
        history("b1", seq, seq - 2, {"img": image, "h": hist, "x": 1.0}) for seq in (2, 3, 4)
    ]
    ingest(admin, "b1", records).raise_for_status()
    media = admin.get(f"{RUN}/media", params={"keys": "img", "min_step": 1}).json()["media"]
    assert list(media) == ["img"] and [m["step"] for m in media["img"]] == [1, 2]
    value = media["img"][0]["value"]
    assert value["url"] == f"/api/v1{RUN}/blobs/{sha}" and value["caption"] == "c"
    assert value["masks"]["m"]["url"] == value["url"]
    got = admin.get(value["url"].removeprefix("/api/v1"))
    assert got.content == png and got.headers["content-type"] == "image/png"
    everything = admin.get(f"{RUN}/media").json()["media"]
    assert sorted(everything) == ["h", "img"] and everything["h"][2]["value"] == hist
    rows = admin.get(f"{RUN}/history").json()
    assert rows[0]["img"]["sha256"] == sha  # history still returns the values
