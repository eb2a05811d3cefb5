"""The house rule on imports, read from the source: arrows point one way.

The daemon and the server take from the client package only the contracts between the
processes (``trackd._wire``) and ``trackd.errors``; they never import each other; the
client never imports either of them (it starts the daemon as ``python -m trackd.daemon``
and talks to the server over HTTP).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# folder -> (its own import name, what else of trackd it may import)
RULES = {
    "daemon": ("trackd.daemon", ("trackd._wire", "trackd.errors")),
    "server": ("trackd.server", ("trackd._wire", "trackd.errors")),
    "client": ("trackd", ()),
}
OTHER_PROCESSES = ("trackd.daemon", "trackd.server")


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _imported(tree: ast.AST) -> list[tuple[int, str]]:
    """Every absolute ``trackd`` module a source imports (``from trackd import x`` -> trackd.x)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "trackd":
                found += [(node.lineno, f"trackd.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if _within(name, "trackd")]


def violations(folder: str, source: str, filename: str = "<source>") -> list[str]:
    """The imports in ``source`` (a module of ``folder``) that break the rule."""
    own, allowed = RULES[folder]
    out = []
    for line, module in _imported(ast.parse(source, filename)):
        if folder == "client":
            bad = any(_within(module, other) for other in OTHER_PROCESSES)
        else:
            bad = not _within(module, own) and not any(_within(module, a) for a in allowed)
        if bad:
            out.append(f"{filename}:{line}: imports {module}")
    return out


@pytest.mark.parametrize("folder", sorted(RULES))
def test_packages_import_only_what_the_rule_allows(folder: str) -> None:
    problems = []
    files = sorted((ROOT / folder).rglob("*.py"))
    assert files, f"no sources found under {folder}/"
    for path in files:
        problems += violations(folder, path.read_text(), str(path.relative_to(ROOT)))
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize(
    ("folder", "source"),
    [
        ("daemon", "import trackd._transport\n"),
        ("daemon", "from trackd._spawn import LOCK_NAME\n"),
        ("daemon", "from trackd import _session\n"),
        ("server", "from trackd.daemon._uploader import Uploader\n"),
        ("server", "def f():\n    from trackd import _run\n"),
        ("client", "from trackd.server import create_app\n"),
    ],
)
def test_the_rule_catches_a_forbidden_import(folder: str, source: str) -> None:
    assert violations(folder, source), f"{source!r} in {folder}/ should break the rule"


@pytest.mark.parametrize(
    ("folder", "source"),
    [
        ("daemon", "from trackd._wire import records as p\nfrom trackd.errors import Error\n"),
        ("server", "from trackd._wire.limits import MAX_KEY_LEN\nfrom . import _db\n"),
        ("server", "from trackd.server._db import Database\n"),
    ],
)
def test_the_rule_allows_the_contracts(folder: str, source: str) -> None:
    assert violations(folder, source) == []
