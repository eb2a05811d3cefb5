"""Importing a framework an integration needs, with an error that says how to install it."""

from __future__ import annotations

import importlib
from types import ModuleType


def first_of(integration: str, modules: tuple[str, ...], install: str) -> ModuleType:
    """The first of ``modules`` that imports, or an ``ImportError`` naming the integration,
    what it looked for and the ``pip install`` line that provides it."""
    for name in modules:
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or name.split(".")[0] != exc.name.split(".")[0]:
                raise  # the framework is there but something it imports is not
    raise ImportError(
        f"trackd.integrations.{integration} needs {' or '.join(modules)}, which is not "
        f"installed; install it with: pip install {install}"
    )
