"""How deeply a JSON document nests, checked before it is parsed.

Python's JSON parser recurses once per ``[`` or ``{``, so a small document nested a few
thousand deep raises :class:`RecursionError`; so would code that walks what it parsed (the
run filters). Every JSON document from a client (request bodies, the ``filters`` query) is
checked here first and refused with a clear 400 past :data:`MAX_DEPTH`.
"""

from __future__ import annotations

import re

from .errors import BadRequest

MAX_DEPTH = 64
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_OPENERS = frozenset(b"[{")


def depth(doc: bytes) -> int:
    """The deepest nesting of arrays and objects in JSON text ``doc`` (0 for a scalar)."""
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", doc))
    level = deepest = 0
    for char in brackets:
        if char in _OPENERS:
            level += 1
            deepest = max(deepest, level)
        else:
            level -= 1
    return deepest


def check_depth(doc: bytes, what: str) -> None:
    """:class:`BadRequest` if JSON text ``doc`` nests deeper than :data:`MAX_DEPTH`."""
    if doc.count(b"[") + doc.count(b"{") <= MAX_DEPTH:
        return  # cannot be deeper than the number of brackets
    found = depth(doc)
    if found > MAX_DEPTH:
        raise BadRequest(
            f"{what} is nested {found} deep; the limit is {MAX_DEPTH} levels of arrays and "
            "objects; send a flatter document"
        )
