"""The blob store behind run files and media: big objects in parts, servers sharing one store
(a directory, or a bucket of moto's S3 emulator) on one PostgreSQL, a restart, and the run
files an older server kept in ``<data dir>/files`` moved into the store."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests._support.objstore import LocalStore, MotoServer, S3Store
from tests._support.postgres import PostgresCluster
from tests._support.server import ServerProcess, running_server
from tests.server._batches import ingest, run_start

RUN = "/runs/admin/proj/s1"
# the store does not depend on the database (PostgreSQL: the shared-store test below)
ON_SQLITE = pytest.mark.parametrize(
    ("db_url", "store"), [("sqlite", "local"), ("sqlite", "s3")], indirect=True
)
BIG = 9 << 20  # over the S3 store's 8 MiB multipart threshold: two parts


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@ON_SQLITE
def test_big_objects_round_trip_by_sha_and_survive_a_restart(
    server: ServerProcess, store: LocalStore | S3Store
) -> None:
    named, unnamed = os.urandom(BIG), os.urandom(BIG + 12345)
    with server.client() as admin:
        ingest(admin, "s1", [run_start("s1")]).raise_for_status()
        wrong = admin.put(f"{RUN}/blobs/{_sha(named)}", content=unnamed)
        assert wrong.status_code == 400, wrong.text
        assert store.objects() == [] and store.leftovers() == []  # the parts were dropped
        admin.put(f"{RUN}/blobs/{_sha(named)}", content=named).raise_for_status()
        put = admin.put(f"{RUN}/files/ckpt/big.bin", content=unnamed)
        assert put.status_code == 200, put.text
        assert (put.json()["sha256"], put.json()["size"]) == (_sha(unnamed), len(unnamed))
    server.stop()
    server.start()
    with server.client() as admin:
        assert _sha(admin.get(f"{RUN}/blobs/{_sha(named)}").content) == _sha(named)
        got = admin.get(f"{RUN}/files/ckpt/big.bin")
        assert got.headers["content-length"] == str(len(unnamed))
        assert _sha(got.content) == _sha(unnamed)
        listing = admin.get(f"{RUN}/files").json()["files"]
    assert [(f["name"], f["size"], f["sha256"]) for f in listing] == [
        ("ckpt/big.bin", len(unnamed), _sha(unnamed))
    ]
    assert store.objects() == sorted([_sha(named), _sha(unnamed)])
    assert store.leftovers() == []


@pytest.fixture(params=["shared-dir", "s3"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> LocalStore | S3Store:
    if request.param == "s3":
        moto: MotoServer = request.getfixturevalue("moto")
        return S3Store(moto)
    return LocalStore(tmp_path / "shared-files")


@pytest.mark.postgres
def test_two_servers_on_one_store_write_one_object_at_once(
    tmp_path: Path, pg_cluster: PostgresCluster, shared: LocalStore | S3Store
) -> None:
    url = pg_cluster.fresh_url()
    data = os.urandom(3 << 20)
    sha = _sha(data)
    with running_server(tmp_path / "a", db=url, args=shared.args, env=shared.env) as a:
        # the first server made the admin; the second finds it in the database
        second = running_server(
            tmp_path / "b", db=url, args=shared.args, env=shared.env, admin_key=a.admin_key
        )
        with second as b:
            clients = [a.client(), b.client()]
            try:
                _upload_at_once(clients, data)
            finally:
                for client in clients:
                    client.close()
    assert shared.objects() == [sha]
    assert shared.leftovers() == []


def _upload_at_once(clients: list[httpx.Client], data: bytes) -> None:
    sha = _sha(data)
    ingest(clients[0], "s1", [run_start("s1")]).raise_for_status()

    def upload(i: int) -> int:  # the same bytes, as blobs and as files, through both
        client = clients[i % 2]
        if i % 4 < 2:
            return client.put(f"{RUN}/blobs/{sha}", content=data).status_code
        return client.put(f"{RUN}/files/copy-{i}.bin", content=data).status_code

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(upload, range(8))) == [200] * 8
    for client in clients:  # each server serves what the other stored
        names = [f["name"] for f in client.get(f"{RUN}/files").json()["files"]]
        assert names == [f"copy-{i}.bin" for i in (2, 3, 6, 7)]
        assert _sha(client.get(f"{RUN}/files/copy-2.bin").content) == sha
        assert _sha(client.get(f"{RUN}/blobs/{sha}").content) == sha


@ON_SQLITE
def test_an_older_servers_run_files_move_into_the_store(
    server: ServerProcess, store: LocalStore | S3Store
) -> None:
    with server.client() as admin:
        ingest(admin, "s1", [run_start("s1")]).raise_for_status()
    server.stop()
    root = server.data_dir / "files" / "1"  # the run's primary key: the database's first run
    (root / "sub").mkdir(parents=True)
    (root / "notes.txt").write_bytes(b"hello")
    (root / "sub" / "deep.bin").write_bytes(b"deep")
    (root / ".trackd-upload-x1y2").write_bytes(b"half an upload")
    secret = server.data_dir / "secret.txt"
    secret.write_text("do not read")
    (root / "leak.txt").symlink_to(secret)  # leads outside the run: not one of its files
    (root / "leakdir").symlink_to(server.data_dir)
    (root / "alias.txt").symlink_to(root / "notes.txt")  # stays inside the run: readable
    server.start()
    with server.client() as admin:
        listing = admin.get(f"{RUN}/files").json()["files"]
        assert [(f["name"], f["size"]) for f in listing] == [
            ("alias.txt", 5),
            ("notes.txt", 5),
            ("sub/deep.bin", 4),
        ]
        assert admin.get(f"{RUN}/files/alias.txt").content == b"hello"
        assert admin.get(f"{RUN}/files/sub/deep.bin").content == b"deep"
        assert admin.get(f"{RUN}/files/leak.txt").status_code == 404
        assert admin.get(f"{RUN}/files/leakdir/secret.txt").status_code == 404
    assert store.objects() == sorted([_sha(b"hello"), _sha(b"deep")])
    assert not (server.data_dir / "files").exists()
    assert (server.data_dir / "files.imported" / "1" / "notes.txt").read_bytes() == b"hello"
    server.stop()
    server.start()  # nothing left to move; the files stay
    with server.client() as admin:
        assert len(admin.get(f"{RUN}/files").json()["files"]) == 3


def test_boto3_is_imported_only_for_an_s3_store(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from trackd.server import Database, create_app, load_settings, migrate\n"
        f"settings = load_settings({{'data_dir': {str(tmp_path)!r}}})\n"
        "db = Database.open(settings.db, settings.data_dir)\n"
        "migrate(db.writer)\n"
        "create_app(settings, db)\n"
        "print(sorted(m for m in ('boto3', 'botocore') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_bucket_that_cannot_be_reached_stops_startup(tmp_path: Path, moto: MotoServer) -> None:
    s3 = S3Store(moto)
    env = dict(s3.env, PATH=os.environ.get("PATH", ""))
    for files, why in (
        ("s3://no-such-bucket/x", "cannot reach bucket 'no-such-bucket'"),
        ("gs://bucket/x", "the scheme is not known"),
    ):
        cmd = [sys.executable, "-m", "trackd.server", "--data-dir", str(tmp_path), "--files", files]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 2 and why in out.stderr, out.stderr


def _peak_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))


@pytest.mark.slow
@ON_SQLITE
def test_an_upload_streams_through_without_being_held_whole(server: ServerProcess) -> None:
    """The server's peak memory grows by less than the file (TRACKD_TEST_STORE_MIB, 64 MiB
    by default; measured with 200 MiB: +6 MiB on a directory, +22 MiB on S3)."""
    mib = int(os.environ.get("TRACKD_TEST_STORE_MIB", "64"))
    piece = os.urandom(1 << 20)
    digest = hashlib.sha256()
    for _ in range(mib):
        digest.update(piece)
    assert server.proc is not None
    with server.client() as admin:
        ingest(admin, "s1", [run_start("s1")]).raise_for_status()
        before = _peak_rss_kib(server.proc.pid)
        put = admin.put(f"{RUN}/files/big.bin", content=(piece for _ in range(mib)))
        assert put.status_code == 200 and put.json()["sha256"] == digest.hexdigest()
        got = hashlib.sha256()
        with admin.stream("GET", f"{RUN}/files/big.bin") as answer:
            for chunk in answer.iter_bytes():
                got.update(chunk)
        assert got.hexdigest() == digest.hexdigest()
        grown_mib = (_peak_rss_kib(server.proc.pid) - before) / 1024
    assert grown_mib < 40, f"the server's peak memory grew by {grown_mib:.0f} MiB"
