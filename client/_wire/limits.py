"""What a logged value, a key, a name or a run id may be: one rule for every process.

The training process checks these at the call site (a clear error where the mistake is
made) and the server checks them again at ingest (nothing it cannot store reaches its
database). Both import them from here, so the two checks cannot drift apart.

- keys: ``str`` of at most ``MAX_KEY_LEN`` characters;
- a ``str`` value or key: at most ``MAX_VALUE_BYTES`` bytes of UTF-8 (1 MiB), and no NUL
  character (PostgreSQL's text cannot hold one);
- an ``int`` history value: fits in 64 bits (``INT64_MIN`` .. ``UINT64_MAX``); a step, a
  config or summary int: int64; an exit code: int64 (``EXIT_CODE_MIN`` .. ``EXIT_CODE_MAX``; Windows reports
  codes such as 0xC0000005 unsigned);
- config and summary values: None, bool, int, float (NaN and inf included), str, and lists
  and str-keyed maps of those, nested at most ``MAX_DEPTH`` levels (deeper data is almost
  always a mistake, and every reader must be able to walk it without recursion trouble);
- one encoded record: at most ``MAX_RECORD_BYTES`` (the server's ingest body limit is
  larger, so a single record always fits a batch);
- entity, user, team and project names: ``NAME_RULE``;
- run ids: ``RUN_ID_RULE`` (they become directory names and URL parts);
- writer labels of a shared run: ``WRITER_RULE`` (they become part of directory names).

Version 1 of these rules.
"""

from __future__ import annotations

import re
from typing import TypeGuard

LIMITS_VERSION = 1
MAX_KEY_LEN = 512
MAX_VALUE_BYTES = 1 << 20
INT64_MIN, INT64_MAX, UINT64_MAX = -(1 << 63), (1 << 63) - 1, (1 << 64) - 1
EXIT_CODE_MIN, EXIT_CODE_MAX = INT64_MIN, INT64_MAX
MAX_DEPTH = 32
MAX_RECORD_BYTES = 8 << 20

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
NAME_RULE = "1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
_RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
RUN_ID_RULE = "1-64 letters, digits, '-' or '_'"
WRITER_RULE = "'' (the run's only writer) or 1-64 letters, digits, '-' or '_'"


def utf8_size(value: str) -> int:
    """The bytes ``value`` takes as UTF-8 (a lone surrogate counted, not raised on)."""
    return len(value.encode("utf-8", "surrogatepass"))


def str_too_long(value: str) -> bool:
    """Whether ``value`` is over ``MAX_VALUE_BYTES`` of UTF-8 (cheap for short strings)."""
    return len(value) * 4 > MAX_VALUE_BYTES and utf8_size(value) > MAX_VALUE_BYTES


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as a str (too long, or holds NUL), or None."""
    if str_too_long(value):
        return f"is a str of {utf8_size(value)} bytes; at most {MAX_VALUE_BYTES} (1 MiB) fit"
    if "\0" in value:
        return f"is a str holding a NUL character at index {value.index(chr(0))}; remove it"
    return None


def valid_name(name: object) -> TypeGuard[str]:
    """An entity, user, team or project name (see ``NAME_RULE``)."""
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def valid_run_id(run_id: object) -> TypeGuard[str]:
    """A run id (see ``RUN_ID_RULE``)."""
    return isinstance(run_id, str) and _RUN_ID.fullmatch(run_id) is not None


def valid_writer(writer: object) -> TypeGuard[str]:
    """A writer label of a shared run (see ``WRITER_RULE``): ``""`` or like a run id."""
    return writer == "" or valid_run_id(writer)
