"""Run ids and the random two-word names runs get when none is given."""

from __future__ import annotations

import secrets
import string

_ADJECTIVES = (
    "amber",
    "brisk",
    "calm",
    "dapper",
    "eager",
    "fancy",
    "gentle",
    "hardy",
    "icy",
    "jolly",
    "keen",
    "lucid",
    "mellow",
    "nimble",
    "olive",
    "proud",
    "quiet",
    "rapid",
    "silver",
    "tidy",
    "upbeat",
    "vivid",
    "warm",
    "young",
    "zesty",
    "bold",
    "crisp",
    "dusty",
    "early",
    "fuzzy",
)
_NOUNS = (
    "aurora",
    "breeze",
    "canyon",
    "delta",
    "ember",
    "forest",
    "glacier",
    "harbor",
    "island",
    "jungle",
    "lagoon",
    "meadow",
    "nebula",
    "ocean",
    "pebble",
    "quasar",
    "river",
    "summit",
    "tundra",
    "valley",
    "willow",
    "zephyr",
    "comet",
    "dune",
    "fjord",
    "galaxy",
    "horizon",
)
_ID_ALPHABET = string.ascii_lowercase + string.digits


def new_run_id(length: int = 8) -> str:
    """A random run id such as ``'k3x9q2ma'``."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def new_run_name() -> str:
    """A random name such as ``'brisk-meadow'``."""
    return f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}"


def check_run_id(run_id: str) -> str:
    """Run ids become directory names and URL parts: letters, digits, '-', '_' only."""
    allowed = set(_ID_ALPHABET + string.ascii_uppercase + "-_")
    if not run_id or len(run_id) > 64 or not set(run_id) <= allowed:
        from .errors import UsageError

        raise UsageError(
            f"init(): id {run_id!r} is not a valid run id; use 1-64 letters, digits, '-' or '_'"
        )
    return run_id
