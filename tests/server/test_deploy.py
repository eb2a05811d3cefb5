"""The example deployment in ``deploy/``: haproxy accepts its configuration as shipped
(only the certificate path pointed at a throwaway certificate)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests._support.replicas import haproxy_binary
from tests._support.tlsproxy import self_signed

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_the_haproxy_example_is_a_valid_configuration(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    pem = tmp_path / "trackd.pem"
    pem.write_text(cert.read_text() + key.read_text())
    text = (DEPLOY / "haproxy.cfg").read_text()
    assert "/etc/trackd/tls/trackd.pem" in text and "option httpchk GET /healthz" in text
    config = tmp_path / "haproxy.cfg"
    config.write_text(text.replace("/etc/trackd/tls/trackd.pem", str(pem)))
    result = subprocess.run(
        [haproxy_binary(), "-c", "-f", str(config)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
