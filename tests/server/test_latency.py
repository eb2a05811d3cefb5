"""Requests on a kept-alive connection are answered without waiting for a delayed ACK."""

from __future__ import annotations

import statistics
import time

import pytest

from tests._support.server import ServerProcess

pytestmark = pytest.mark.serial  # a latency bound: run alone (see the Makefile)


def test_kept_alive_requests_answer_in_milliseconds(server: ServerProcess) -> None:
    # Without TCP_NODELAY the body of each answer after the first waited for the client's
    # delayed ACK: 40 ms or more per request, whatever the request did.
    with server.client() as client:
        times = []
        for _ in range(21):
            began = time.perf_counter()
            client.get("/viewer").raise_for_status()
            times.append(time.perf_counter() - began)
    assert statistics.median(times) < 0.02, [round(t * 1000, 1) for t in times]
