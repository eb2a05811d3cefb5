"""Reading wandb's run files (``run-<id>.wandb``): the LevelDB log format wandb writes its
protobuf records in.

The file starts with a 7-byte header (``:W&B``, magic 0xBEE1, version 0); then 32 KiB
blocks of chunks, each ``<crc32:u32><length:u16><type:u8>`` and its bytes, where a record is
one FULL chunk or FIRST, MIDDLE..., LAST; a block's tail under 7 bytes is padding. The CRC
is zlib's crc32 of the bytes, seeded with the crc32 of the type byte. The protobuf schema
comes from the ``wandb`` package (``pip install 'trackd[import]'``).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import RunLogError, UsageError

FILE_HEADER = struct.Struct("<4sHB")
IDENT, MAGIC = b":W&B", 0xBEE1
CHUNK = struct.Struct("<IHB")
BLOCK = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
_SEED = [zlib.crc32(bytes([t])) for t in range(LAST + 1)]


def record_class() -> Any:
    """wandb's protobuf ``Record`` class, or a ``UsageError`` saying how to install it."""
    try:
        from wandb.proto import wandb_internal_pb2
    except ImportError:
        raise UsageError(
            "trackd import wandb reads .wandb files with the wandb package, which is not "
            "installed; install it with: pip install 'trackd[import]'"
        ) from None
    return wandb_internal_pb2.Record  # type: ignore[attr-defined]


def read_records(path: Path) -> Iterator[Any]:
    """The protobuf records of a ``.wandb`` file, in order (a torn tail ends them)."""
    record = record_class()
    for payload in chunks_to_records(path.read_bytes(), str(path)):
        parsed = record()
        parsed.ParseFromString(payload)
        yield parsed


def chunks_to_records(data: bytes, where: str) -> Iterator[bytes]:
    """The record payloads of a LevelDB-format log; stops at a torn or corrupt chunk."""
    if len(data) < FILE_HEADER.size:
        raise RunLogError(f"{where}: {len(data)} bytes, too short for a .wandb file")
    ident, magic, version = FILE_HEADER.unpack_from(data)
    if ident != IDENT or magic != MAGIC or version != 0:
        raise RunLogError(
            f"{where}: not a .wandb run file (header {data[:7]!r}); pass run-<id>.wandb files "
            "or the run directories that hold them"
        )
    pos, parts = FILE_HEADER.size, b""
    while True:
        left = BLOCK - pos % BLOCK
        if left < CHUNK.size:
            pos += left
            continue
        if pos + CHUNK.size > len(data):
            return
        crc, length, kind = CHUNK.unpack_from(data, pos)
        body = data[pos + CHUNK.size : pos + CHUNK.size + length]
        if kind not in (FULL, FIRST, MIDDLE, LAST) or len(body) < length:
            return  # zero padding at the end, or a torn write
        if zlib.crc32(body, _SEED[kind]) != crc:
            return
        pos += CHUNK.size + length
        if kind == FULL:
            yield body
        elif kind == FIRST:
            parts = body
        elif kind == MIDDLE:
            parts += body
        else:
            yield parts + body
