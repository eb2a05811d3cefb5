"""``trackd.save()``: which files a glob names, and under what name each lives in the run.

wandb's rules: the name of a file in the run is its path relative to ``base_path``; without
``base_path``, the glob's directory part (the leading folders that hold no wildcard) is the
base, so ``save("ckpt/*.pt")`` saves ``ckpt/a.pt`` as ``a.pt``. Only regular files match.
The training process never reads a file: it names it, and the daemon hashes and uploads it.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from ._wire.media import SAVE_POLICIES
from .errors import UsageError

_WILDCARDS = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class SaveRequest:
    """One ``save()`` call, kept so ``finish()`` can look again (policies end and live)."""

    glob_str: str
    base_path: str
    policy: str


def request(glob_str: object, base_path: object, policy: object) -> SaveRequest:
    """The checked arguments of ``save()``, or :class:`UsageError`."""
    if not isinstance(glob_str, (str, os.PathLike)) or not str(glob_str):
        raise UsageError(
            f"save(): glob_str is {type(glob_str).__name__}; pass a path or glob such as "
            "'checkpoints/*.pt'"
        )
    if policy not in SAVE_POLICIES:
        raise UsageError(f"save(): policy {policy!r} is not one of {', '.join(SAVE_POLICIES)}")
    pattern = os.path.abspath(os.fspath(glob_str))
    if base_path is None:
        base = _glob_directory(pattern)
    elif isinstance(base_path, (str, os.PathLike)):
        base = os.path.abspath(os.fspath(base_path))
    else:
        raise UsageError(f"save(): base_path is {type(base_path).__name__}; pass a folder path")
    return SaveRequest(pattern, base, str(policy))


def _glob_directory(pattern: str) -> str:
    parts = Path(pattern).parts
    fixed = []
    for part in parts[:-1]:
        if _WILDCARDS & set(part):
            break
        fixed.append(part)
    return str(Path(*fixed)) if fixed else os.sep


def matches(req: SaveRequest) -> list[tuple[str, str]]:
    """``(name in the run, absolute path)`` of each regular file the glob matches now;
    :class:`UsageError` for a file outside ``base_path``."""
    found = []
    for path in sorted(glob.glob(req.glob_str, recursive=True)):
        if not os.path.isfile(path):
            continue
        rel = os.path.relpath(path, req.base_path)
        if rel == os.curdir or rel.startswith(os.pardir + os.sep) or rel == os.pardir:
            raise UsageError(
                f"save(): {path} is not inside base_path {req.base_path}; pass a base_path "
                "that holds every file the glob matches"
            )
        found.append((Path(rel).as_posix(), path))
    return found
