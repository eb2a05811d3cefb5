"""Run ids and the random two-word names runs get when none is given."""

from __future__ import annotations

import secrets
import string

from ._wire.limits import RUN_ID_RULE, valid_run_id
from .errors import UsageError

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
    """A run id as the user gave it, or a clear error (the rule is ``RUN_ID_RULE``)."""
    if not valid_run_id(run_id):
        raise UsageError(f"init(): id {run_id!r} is not a valid run id; use {RUN_ID_RULE}")
    return run_id
