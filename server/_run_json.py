"""A run's config and summary as JSON text, the form the database filters and sorts on.

Kept beside the msgpack columns (which stay the exact record) in ``runs.config_json`` and
``runs.summary_json``. JSON has no NaN or infinities: they are stored as the strings
``"NaN"``, ``"Infinity"`` and ``"-Infinity"``, as JSON answers spell them, so a filter
comparing numbers never matches them.
"""

from __future__ import annotations

from typing import Any

from ._runs import unpack
from ._values import render, to_json


def dumps(blob: bytes | None) -> str:
    """The JSON text of a msgpack config or summary column."""
    return to_json_text(unpack(blob))


def to_json_text(doc: Any) -> str:
    """The JSON text of a config or summary map."""
    return to_json(render(doc)).decode()
