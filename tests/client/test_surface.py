"""The public surface: exactly what __all__ says, and every setting documented."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import trackd
from trackd._wire.settings import TABLE

ROOT = Path(__file__).resolve().parents[2]
SUBPACKAGES = {
    "cli",
    "daemon",
    "server",
    "integrations",
}  # the CLI, the other processes, the framework integrations (imported on demand): not API


def test_all_is_exactly_the_public_surface() -> None:
    public = {name for name in dir(trackd) if not name.startswith("_")} - SUBPACKAGES
    assert public == set(trackd.__all__) - {"__version__"}


def test_rich_values_and_watch_are_public() -> None:
    rich = {"Image", "Classes", "Histogram", "Table", "watch", "unwatch"}
    assert rich <= set(trackd.__all__)


def test_every_setting_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"`(TRACKD_[A-Z_]+)`", readme))
    for _name, _default, env, _help in TABLE:
        assert env in documented, f"{env} is not documented in README.md"
    from trackd.server._settings import SETTINGS

    for row in SETTINGS:
        assert row[2] in documented, f"{row[2]} is not documented in README.md"


def test_import_does_not_import_torch_or_server() -> None:
    code = (
        "import sys, trackd\n"
        "trackd.init(mode='offline', project='p').log({'a': 1.0})\n"
        "trackd.finish()\n"
        "bad = [m for m in ('torch', 'trackd.server', 'trackd.daemon', 'fastapi') if m in sys.modules]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_encode_history_matches_record_encoding() -> None:
    from trackd._wire import records as p

    record = p.History(p.HISTORY, "run1", 5, 3, 1.5, {"a": 1.0})
    fast = p.history_encoder()("run1", 5, 3, 1.5, {"a": 1.0})
    assert fast == p.encode(record)
    assert p.decode(fast) == record
