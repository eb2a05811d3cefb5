"""Run ids, the random two-word names runs get when none is given, and the checks on the
names and texts ``init()`` is given (by the rules of :mod:`trackd._wire.limits`)."""

from __future__ import annotations

import secrets
import string
from typing import Any

from ._wire.limits import (
    NAME_RULE,
    RUN_ID_RULE,
    WRITER_RULE,
    text_problem,
    valid_name,
    valid_run_id,
    valid_writer,
)
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


def check_writer(writer: str | None, primary: bool | None) -> tuple[str, bool]:
    """``init()``'s ``writer`` and ``primary``: the label (``""`` for a run's only writer)
    and whether this process is the primary writer (its finish or crash ends the run).

    The rule: an unlabelled writer is the run's only writer, so its primary; a labelled
    writer joins a shared run as a secondary unless ``primary=True``."""
    label = "" if writer is None else writer
    if not valid_writer(label):
        raise UsageError(
            f"init(): writer {writer!r} is not a writer label; use {WRITER_RULE} "
            "(e.g. writer='rank-3')"
        )
    if primary is not None and type(primary) is not bool:
        raise UsageError(f"init(): primary must be True, False or None, not {primary!r}")
    if not label and primary is False:
        raise UsageError(
            "init(): primary=False needs a writer label: a run's unlabelled writer is its "
            "only one; pass writer='rank-3' (say) to join a shared run as a secondary writer"
        )
    return label, (not label) if primary is None else primary


def check_run_text(**texts: Any) -> None:
    """``init()``'s free-text arguments (name, group, notes ...): each None or a storable str."""
    for param, value in texts.items():
        if value is None:
            continue
        if not isinstance(value, str):
            raise TypeError(f"init(): {param} is a {type(value).__name__}; pass a str, e.g. str(x)")
        problem = text_problem(value)
        if problem is not None:
            raise ValueError(f"init(): {param} {problem}")


def check_names(**names: Any) -> None:
    """Project and entity names, checked now rather than refused by the server later."""
    for what, value in names.items():
        if value is not None and not valid_name(value):
            raise UsageError(f"init(): {what} {value!r} is not a valid name; use {NAME_RULE}")


def check_tags(tags: Any) -> list[str]:
    """Tags as a list of str (a single str is one tag)."""
    if tags is None:
        return []
    if isinstance(tags, str):
        return [tags]
    out = [str(tag) for tag in tags]
    check_run_text(**{f"tags[{i}]": tag for i, tag in enumerate(out)})
    return out
