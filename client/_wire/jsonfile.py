"""Small JSON files (credentials, settings, upload progress), written atomically.

A writer never leaves a half-written file: it writes ``NAME.tmp`` with the final mode
already set, then renames it over ``NAME``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_json(path: Path, data: Any, mode: int = 0o600, indent: int | None = None) -> None:
    """Write ``data`` to ``path`` atomically, readable as ``mode`` says (0600: its user only)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=indent)
        if indent is not None:
            f.write("\n")
    os.chmod(tmp, mode)  # O_CREAT's mode is masked by the umask; a left-over tmp kept its own
    tmp.replace(path)


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None if it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
