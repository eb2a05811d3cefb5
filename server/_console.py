"""What runs printed: ``Output`` records stored one row per line in ``console_lines``, and read
back in order, ``after`` a line number, for the run page's Logs tab.

Lines are numbered 1, 2, ... per run in the order ingest applies them; ingest applies each
record once (by seq), so a line keeps its number and a reader polls with the last number it
has (``GET .../logs?after=N``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, insert, select

from . import _schema as s
from ._record_rules import INT64_MAX
from .errors import BadRequest

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000


def store(conn: Connection, run_pk: int, outputs: list[Any], writer: str = "") -> None:
    """Append the lines of ``outputs`` (``Output`` records, in seq order) to the run's console."""
    c = s.console_lines.c
    last = conn.execute(select(func.max(c.line)).where(c.run_pk == run_pk)).scalar()
    line = int(last or 0)
    rows = []
    for record in outputs:
        for text in record.text.split("\n"):
            line += 1
            rows.append(
                {
                    "run_pk": run_pk,
                    "line": line,
                    "time": float(record.time),
                    "stream": record.stream,
                    "writer": writer,
                    "text": text,
                }
            )
    if rows:
        conn.execute(insert(s.console_lines), rows)


def read(conn: Connection, run_pk: int, after: int, limit: int | None) -> dict[str, Any]:
    """``{"lines": [{"line", "time", "stream", "writer", "text"}], "last_line"}``: at most
    ``limit`` lines numbered above ``after``, and the run's highest line number."""
    if limit is None:
        limit = DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit={limit} is out of range; ask for 1 to {MAX_LIMIT} lines")
    if not 0 <= after <= INT64_MAX:
        raise BadRequest(
            f"after={after} is outside 0..2**63-1; pass 0 (or the last line number you have)"
        )
    c = s.console_lines.c
    rows = conn.execute(
        select(c.line, c.time, c.stream, c.writer, c.text)
        .where(c.run_pk == run_pk, c.line > after)
        .order_by(c.line)
        .limit(limit)
    )
    lines = [
        {"line": int(line), "time": time, "stream": stream, "writer": writer, "text": text}
        for line, time, stream, writer, text in rows
    ]
    last = conn.execute(select(func.max(c.line)).where(c.run_pk == run_pk)).scalar()
    return {"lines": lines, "last_line": int(last or 0)}
