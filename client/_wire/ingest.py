"""The body the daemon posts to ``/api/v1/ingest``, built and read in one place.

A msgpack map ``{"v": 1, "entity": str | nil, "project": str, "run_id": str, "records":
[record, ...]}`` whose records are the run log's own record bytes (:mod:`.records`), in
increasing ``seq`` order, all of one run: the uploader copies them from disk without
decoding them. A body without ``v`` is version 1. An optional ``"writer": str`` names the
writer of a shared run whose log the records come from (absent or ``""``: the run's only or
unlabelled writer); the server keeps each writer's seqs apart.

Version 2 (``"v": 2``) is version 1 plus columnar elements: an element of ``records`` may be
a msgpack map holding a stretch of plain History records as arrays (:mod:`.columns`), in
its place in seq order. The daemon sends version 2 only when a batch holds such an element,
so a version 1 server still takes every other batch; the server reads both.

The answer (:class:`IngestAnswer`): ``200 {"durable_seq": N}``, the highest seq the server
holds for the run, when every record was applied. When some records cannot be stored (a
value out of range, say), the server still applies the others, moves the run past the
refused ones, and answers ``422`` with the same ``durable_seq`` plus ``"rejected": [{"seq":
s, "reason": "..."}]`` beside the usual error body; the daemon records the refusals and goes
on. A 4xx without ``rejected`` refuses the whole batch.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import msgpack

from .records import DecodeError

INGEST_VERSION = 2
VERSIONS = (1, 2)  # the versions a server reads


@dataclass(frozen=True, slots=True)
class IngestBody:
    """A decoded ingest body; ``records`` are still the raw decoded arrays."""

    entity: Any
    project: Any
    run_id: Any
    records: list[Any]
    version: int = 1  # 2: ``records`` may hold columnar elements
    writer: Any = ""


@dataclass(frozen=True, slots=True)
class Rejection:
    seq: int
    reason: str


@dataclass(frozen=True, slots=True)
class IngestAnswer:
    durable_seq: int
    rejected: tuple[Rejection, ...] = ()


def answer_body(durable_seq: int, rejected: list[Rejection]) -> dict[str, Any]:
    """What the server puts in its answer beside the error body (if any)."""
    doc: dict[str, Any] = {"durable_seq": durable_seq}
    if rejected:
        doc["rejected"] = [{"seq": r.seq, "reason": r.reason} for r in rejected]
    return doc


def decode_answer(doc: Any) -> IngestAnswer | None:
    """The server's answer to an ingest, or None if ``doc`` does not carry one."""
    if not isinstance(doc, dict) or type(doc.get("durable_seq")) is not int:
        return None
    rejected = []
    for entry in doc.get("rejected") or ():
        if isinstance(entry, dict) and type(entry.get("seq")) is int:
            rejected.append(Rejection(entry["seq"], str(entry.get("reason", ""))))
    return IngestAnswer(doc["durable_seq"], tuple(rejected))


def encode_body(
    entity: str | None,
    project: str,
    run_id: str,
    payloads: list[bytes],
    version: int = 1,
    writer: str = "",
) -> bytes:
    """The ingest request body around already-encoded records (and, in ``version`` 2,
    encoded columnar elements)."""
    packer = msgpack.Packer(use_bin_type=True)
    fields: list[tuple[str, object]] = [("entity", entity), ("project", project)]
    fields += [("run_id", run_id)] + ([("writer", writer)] if writer else [])
    head = [packer.pack_map_header(2 + len(fields)), packer.pack("v"), packer.pack(version)]
    for key, value in fields:
        head += [packer.pack(key), packer.pack(value)]
    head += [packer.pack("records"), packer.pack_array_header(len(payloads))]
    return b"".join(head) + b"".join(payloads)


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside (decoding a batch makes many objects that all
    live on: collections in the middle find nothing to free and cost twice the decode)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def decode_body(body: bytes) -> IngestBody:
    """The envelope of an ingest body, or :class:`DecodeError` saying what is wrong.

    The values of ``entity``, ``project`` and ``run_id`` are the server's to check."""
    try:
        with gc_paused():
            doc = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types
        raise DecodeError(f"the ingest body is not valid msgpack ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("records"), list):
        raise DecodeError(
            "the ingest body must be a msgpack map with keys entity, project, run_id, records"
        )
    version = doc.get("v", 1)
    if version not in VERSIONS:
        raise DecodeError(
            f"ingest body version {version!r} is not one of {VERSIONS}; upgrade the server"
        )
    return IngestBody(
        doc.get("entity"),
        doc.get("project"),
        doc.get("run_id"),
        doc["records"],
        version,
        doc.get("writer", ""),
    )
