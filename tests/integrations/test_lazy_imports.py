"""``import trackd`` imports no framework, and a missing framework is named with its fix."""

from __future__ import annotations

import subprocess
import sys

import pytest
from trackd.integrations._require import first_of

FRAMEWORKS = ("lightning", "pytorch_lightning", "transformers", "keras", "wandb", "mlflow")


def test_import_trackd_imports_no_framework_and_no_integration() -> None:
    code = (
        "import sys, trackd\n"
        f"names = {FRAMEWORKS!r} + ('trackd.integrations',)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in names"
        " or m.startswith('trackd.integrations')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


def test_a_missing_framework_says_what_to_install() -> None:
    with pytest.raises(ImportError) as caught:
        first_of("lightning", ("no_such_framework_x", "no_such_framework_y"), "lightning")
    message = str(caught.value)
    assert "trackd.integrations.lightning" in message
    assert "no_such_framework_x or no_such_framework_y" in message
    assert "pip install lightning" in message
