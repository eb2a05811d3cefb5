"""Where a test server keeps run files and media: a directory (``<data dir>/blobs`` by default,
or one several servers share), or a bucket of moto's S3 server, an S3 *emulator* run here as a
subprocess on 127.0.0.1 (no AWS account is reached).

::

    with moto_server(tmp_path) as s3:
        store = S3Store(s3)                    # a fresh bucket
        with running_server(tmp_path / "srv", args=store.args, env=store.env) as server:
            ...
        store.objects()                        # the SHA-256 names stored
        store.leftovers()                      # temporary objects, unfinished multipart uploads

A server is pointed at S3 by ``--files s3://bucket/prefix`` (or ``TRACKD_SERVER_FILES``) and
the usual AWS variables: ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._support.server import free_port

START_TIMEOUT = 30.0
_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "trackd-test",
    "AWS_SECRET_ACCESS_KEY": "trackd-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
_BUCKETS = itertools.count(1)
# (database, store) pairs for the server's file and blob tests, parametrizing the fixtures
# ``db_url`` (tests/server/conftest.py) and ``store`` (tests/conftest.py) indirectly
STORES = [
    pytest.param("sqlite", "local", id="sqlite-local"),
    pytest.param("postgres", "local", id="postgres-local", marks=pytest.mark.postgres),
    pytest.param("sqlite", "s3", id="sqlite-s3"),
]


class MotoServer:
    """moto's S3 emulator on a loopback port: ``url``."""

    def __init__(self, port: int, proc: subprocess.Popen[bytes]) -> None:
        self.port, self.proc = port, proc
        self.url = f"http://127.0.0.1:{port}"

    def client(self) -> Any:
        """A boto3 S3 client of the emulator (the test's own view of the bucket)."""
        import boto3

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=_CREDENTIALS["AWS_DEFAULT_REGION"],
        )


@contextmanager
def moto_server(log_dir: Path) -> Iterator[MotoServer]:
    """Start ``python -m moto.server`` on 127.0.0.1; stopped at the end."""
    port = free_port()
    log_path = log_dir / f"moto-{port}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_up(port, proc, log_path)
        yield MotoServer(port, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _wait_up(port: int, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto's server exited:\n{log_path.read_text()[-2000:]}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"moto's server did not answer in {START_TIMEOUT}s")


class LocalStore:
    """Objects in a directory: ``root`` (``args`` name it unless it is the default)."""

    def __init__(self, root: Path, shared: bool = True) -> None:
        self.root = root
        self.args = ["--files", str(root)] if shared else []
        self.env: dict[str, str] = {}

    def objects(self) -> list[str]:
        return sorted(f.name for f in self.root.glob("??/*") if f.is_file())

    def leftovers(self) -> list[str]:
        tmp = self.root / "tmp"
        return sorted(f.name for f in tmp.iterdir()) if tmp.is_dir() else []

    def versions(self, sha256: str) -> list[object]:
        """What changes when the object is written again: its inode and mtime."""
        stat = (self.root / sha256[:2] / sha256).stat()
        return [(stat.st_ino, stat.st_mtime_ns)]


class S3Store:
    """A fresh bucket of ``moto``, objects under ``trackd/``: ``args`` and ``env`` select it."""

    prefix = "trackd/"

    def __init__(self, moto: MotoServer) -> None:
        self.client = moto.client()
        self.bucket = f"trackd-test-{next(_BUCKETS)}-{moto.port}"
        self.client.create_bucket(Bucket=self.bucket)
        # versioned, so a test sees each write of an object (versions())
        versioning = {"Status": "Enabled"}
        self.client.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration=versioning)
        self.args = ["--files", f"s3://{self.bucket}/{self.prefix.rstrip('/')}"]
        self.env = dict(_CREDENTIALS, AWS_ENDPOINT_URL=moto.url)

    def keys(self, under: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + under
        )
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def objects(self) -> list[str]:
        keys = self.keys()
        return sorted(k.rsplit("/", 1)[1] for k in keys if not k.startswith(self.prefix + "tmp/"))

    def leftovers(self) -> list[str]:
        uploads = self.client.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
        return self.keys("tmp/") + [f"multipart upload of {u['Key']}" for u in uploads]

    def versions(self, sha256: str) -> list[object]:
        """Each write of the object: its version ids (the bucket is versioned)."""
        key = f"{self.prefix}{sha256[:2]}/{sha256}"
        found = self.client.list_object_versions(Bucket=self.bucket, Prefix=key)
        return [v["VersionId"] for v in found.get("Versions", []) if v["Key"] == key]
