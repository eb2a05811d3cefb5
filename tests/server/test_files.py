"""Run files: upload, list, download, and path traversal refused; in a directory and in S3."""

from __future__ import annotations

import httpx
import pytest

from tests._support.objstore import STORES
from tests._support.server import ServerProcess
from tests.server._batches import ingest, run_start

FILES = "/runs/admin/proj/f1/files"
# each test on the server's own directory (SQLite and PostgreSQL) and on a bucket of moto's
# S3 emulator (the store does not depend on the database: tests/server/test_file_store.py
# runs S3 on PostgreSQL)
pytestmark = pytest.mark.parametrize(("db_url", "store"), STORES, indirect=True)


def test_upload_list_download(admin: httpx.Client) -> None:
    ingest(admin, "f1", [run_start("f1")]).raise_for_status()
    blob = bytes(range(256)) * 1000
    put = admin.put(FILES + "/ckpt/model.bin", content=blob)
    assert put.status_code == 200, put.text
    assert put.json()["size"] == len(blob)
    admin.put(FILES + "/notes.txt", content=b"hello").raise_for_status()
    admin.put(FILES + "/notes.txt", content=b"hello again").raise_for_status()
    listing = admin.get(FILES).json()["files"]
    assert [(f["name"], f["size"]) for f in listing] == [
        ("ckpt/model.bin", len(blob)),
        ("notes.txt", 11),
    ]
    assert admin.get(FILES + "/ckpt/model.bin").content == blob
    assert admin.get(FILES + "/notes.txt").content == b"hello again"
    missing = admin.get(FILES + "/nope.txt")
    assert missing.status_code == 404 and "'nope.txt' not found" in missing.text
    assert admin.put("/runs/admin/proj/nope/files/x", content=b"x").status_code == 404


def test_path_traversal_is_refused(server: ServerProcess, admin: httpx.Client) -> None:
    ingest(admin, "f1", [run_start("f1")]).raise_for_status()
    secret = server.data_dir / "secret.txt"
    secret.write_text("do not read")
    base = f"{server.url}/api/v1{FILES}/"
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    for raw in (
        "..%2F..%2F..%2Fsecret.txt",
        "%2E%2E/%2E%2E/%2E%2E/secret.txt",
        "a%2F..%2F..%2Fx",
        "%5C..%5Cx",
    ):
        for method in ("GET", "PUT"):
            response = httpx.request(method, base + raw, headers=headers, content=b"evil")
            assert response.status_code == 400, (raw, method, response.text)
            assert "is not allowed" in response.json()["error"]["message"]
    assert secret.read_text() == "do not read"


def test_paths_that_clash_with_files_or_folders_are_4xx(admin: httpx.Client) -> None:
    ingest(admin, "f1", [run_start("f1")]).raise_for_status()
    admin.put(FILES + "/ckpt/model.bin", content=b"weights").raise_for_status()
    onto_folder = admin.put(FILES + "/ckpt", content=b"x")
    assert onto_folder.status_code == 409, onto_folder.text
    assert "'ckpt' is a folder" in onto_folder.json()["error"]["message"]
    under_file = admin.put(FILES + "/ckpt/model.bin/part1", content=b"x")
    assert under_file.status_code == 409, under_file.text
    assert "'ckpt/model.bin' is a file" in under_file.json()["error"]["message"]
    long_name = "x" * 256
    for response in (
        admin.put(f"{FILES}/logs/{long_name}", content=b"x"),
        admin.get(f"{FILES}/logs/{long_name}"),
    ):
        assert response.status_code == 400, response.text
        assert "longer than 255 bytes" in response.json()["error"]["message"]
    listing = admin.get(FILES).json()["files"]
    assert [(f["name"], f["size"]) for f in listing] == [("ckpt/model.bin", 7)]
    assert admin.get(FILES + "/ckpt/model.bin").content == b"weights"
