"""Fuzzing every route from the served OpenAPI spec (schemathesis): no request gets a 5xx.

The cases are valid and invalid requests generated from ``/openapi.json``, each sent with the
admin key to a real server (SQLite: this fuzzes the HTTP layer and its validation, which do
not depend on the database). Examples per route are bounded so the test stays well under a
minute on a small machine.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import msgpack
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests._support.server import running_server
from tests.server._batches import ingest, run_start

EXAMPLES_PER_ROUTE = 30
# path parameters that name things that exist, so that half the cases get past the lookups
KNOWN = {"entity": "admin", "project": "proj", "run_id": "r1", "user": "admin", "team": "t"}


@schemathesis.serializer("application/msgpack")
def _msgpack(_context: object, value: object) -> bytes:
    """/ingest takes msgpack; a generated document is sent packed (as text if it cannot be)."""
    try:
        return bytes(msgpack.packb(value, use_bin_type=True))
    except (OverflowError, TypeError, ValueError):  # e.g. an int beyond 64 bits
        return bytes(msgpack.packb(repr(value), use_bin_type=True))


@pytest.mark.timeout(180)
def test_no_generated_request_gets_a_5xx(tmp_path: Path) -> None:
    with running_server(tmp_path / "server") as server, server.client() as admin:
        ingest(admin, "r1", [run_start("r1")]).raise_for_status()
        admin.put("/runs/admin/proj/r1/files/a.txt", content=b"x").raise_for_status()
        admin.post("/admin/teams", json={"name": "t"}).raise_for_status()
        schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
        auth = {"authorization": f"Bearer {server.admin_key}"}
        failures: list[str] = []
        sent = 0
        start = time.monotonic()
        for result in schema.get_all_operations():
            operation = result.ok()
            names = re.findall(r"{(\w+)}", operation.path)
            known = {name: KNOWN[name] for name in names if name in KNOWN}
            cases = st.one_of(
                operation.as_strategy(GenerationMode.POSITIVE, headers=auth),
                operation.as_strategy(GenerationMode.NEGATIVE, headers=auth),
                operation.as_strategy(GenerationMode.POSITIVE, path_parameters=known),
                operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=known),
            )

            @given(case=cases)
            @settings(
                max_examples=EXAMPLES_PER_ROUTE,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def send(case: schemathesis.Case) -> None:
                nonlocal sent
                case.headers = {**(case.headers or {}), **auth}
                response = case.call(base_url=server.url, timeout=10)
                sent += 1
                if response.status_code >= 500:
                    failures.append(f"{response.status_code} for {case.as_curl_command()}")

            send()
        took = time.monotonic() - start
        log = server.log_tail(200)
    print(f"schemathesis: {sent} requests in {took:.1f} s")
    assert sent > 0
    assert not failures, "\n".join(failures[:10]) + "\n" + log
