"""The body the daemon posts to ``/api/v1/ingest``, built and read in one place.

A msgpack map ``{"v": 1, "entity": str | nil, "project": str, "run_id": str, "records":
[record, ...]}`` whose records are the run log's own record bytes (:mod:`.records`), in
increasing ``seq`` order, all of one run: the uploader copies them from disk without
decoding them. The server answers ``{"durable_seq": N}``, the highest seq it holds for the
run. A body without ``v`` is version 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

from .records import DecodeError

INGEST_VERSION = 1


@dataclass(frozen=True, slots=True)
class IngestBody:
    """A decoded ingest body; ``records`` are still the raw decoded arrays."""

    entity: Any
    project: Any
    run_id: Any
    records: list[Any]


def encode_body(entity: str | None, project: str, run_id: str, payloads: list[bytes]) -> bytes:
    """The ingest request body around already-encoded records."""
    packer = msgpack.Packer(use_bin_type=True)
    head = [packer.pack_map_header(5), packer.pack("v"), packer.pack(INGEST_VERSION)]
    for key, value in (("entity", entity), ("project", project), ("run_id", run_id)):
        head += [packer.pack(key), packer.pack(value)]
    head += [packer.pack("records"), packer.pack_array_header(len(payloads))]
    return b"".join(head) + b"".join(payloads)


def decode_body(body: bytes) -> IngestBody:
    """The envelope of an ingest body, or :class:`DecodeError` saying what is wrong.

    The values of ``entity``, ``project`` and ``run_id`` are the server's to check."""
    try:
        doc = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types
        raise DecodeError(f"the ingest body is not valid msgpack ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("records"), list):
        raise DecodeError(
            "the ingest body must be a msgpack map with keys entity, project, run_id, records"
        )
    version = doc.get("v", INGEST_VERSION)
    if version != INGEST_VERSION:
        raise DecodeError(
            f"ingest body version {version!r} is not {INGEST_VERSION}; upgrade the server"
        )
    return IngestBody(doc.get("entity"), doc.get("project"), doc.get("run_id"), doc["records"])
