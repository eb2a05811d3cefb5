"""An https server with a private CA: refused by default, trusted with TRACKD_CA_BUNDLE (by
``init()`` in the training process and by the daemon's uploader alike)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trackd
from trackd.errors import CommError, UsageError

from tests._support.server import ServerProcess, running_server
from tests._support.tlsproxy import TlsProxy, self_signed


@pytest.fixture
def https(tmp_path: Path) -> Iterator[tuple[ServerProcess, TlsProxy, Path]]:
    cert, key = self_signed(tmp_path)
    with running_server(tmp_path / "server") as server, TlsProxy(server.port, cert, key) as tls:
        yield server, tls, cert


def test_private_ca_needs_ca_bundle(
    https: tuple[ServerProcess, TlsProxy, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, tls, cert = https
    monkeypatch.setenv("TRACKD_BASE_URL", tls.url)
    monkeypatch.setenv("TRACKD_API_KEY", server.admin_key)
    monkeypatch.setenv("TRACKD_BATCH_SECONDS", "0.2")
    with pytest.raises(CommError, match="CERTIFICATE_VERIFY_FAILED"):
        trackd.init(project="tls", resume="must", id="x1")
    monkeypatch.setenv("TRACKD_CA_BUNDLE", str(cert.parent / "missing.pem"))
    with pytest.raises(UsageError, match="TRACKD_CA_BUNDLE=.*cannot be loaded"):
        trackd.init(project="tls")
    monkeypatch.setenv("TRACKD_CA_BUNDLE", str(cert))
    run = trackd.init(project="tls")
    for i in range(100):
        run.log({"i": i})
    run.finish()
    with trackd.Api() as api:
        answer = api.run(f"admin/tls/{run.id}")
        assert answer.state == "finished"
        assert [row["i"] for row in answer.scan_history()] == list(range(100))
