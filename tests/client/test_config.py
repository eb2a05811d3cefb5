"""config: sources, attribute/item access, change protection; read back from the run log."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import trackd
from trackd.errors import ConfigError

from tests._support.procs import only_run_dir, run_script


def test_sources_and_access(tmp_path: Path) -> None:
    ns = argparse.Namespace(lr=0.1, layers=3)
    run = trackd.init(project="p", config=ns)
    assert run.config.lr == 0.1 and run.config["layers"] == 3
    json_file = tmp_path / "c.json"
    json_file.write_text(json.dumps({"opt": "adam"}))
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("batch:\n  value: 64\n  desc: batch size\ndropout: 0.5\n")
    run.config.update(str(json_file))
    run.config.update(str(yaml_file))
    run.config.epochs = 10
    run.config["tuple"] = (1, 2)
    assert "opt" in run.config and len(run.config) == 7
    run.finish()
    data = trackd.read_run(run.dir)
    assert data.config == {
        "lr": 0.1,
        "layers": 3,
        "opt": "adam",
        "batch": 64,
        "dropout": 0.5,
        "epochs": 10,
        "tuple": [1, 2],
    }


def test_absl_flags() -> None:
    flags = pytest.importorskip("absl.flags")
    values = flags.FlagValues()
    flags.DEFINE_integer("depth", 4, "depth", flag_values=values)
    values(["prog"])
    run = trackd.init(project="p", config=values)
    assert run.config.depth == 4
    run.finish()


def test_change_refused_unless_allowed() -> None:
    run = trackd.init(project="p", config={"lr": 0.1})
    with pytest.raises(
        ConfigError, match=r"key 'lr' already has value 0.1; refusing to change it to 0.2"
    ):
        run.config.update({"lr": 0.2})
    with pytest.raises(ConfigError):
        run.config.lr = 0.3
    run.config.update({"lr": 0.1})  # same value: fine
    run.config.update({"lr": 0.2}, allow_val_change=True)
    run.finish()
    assert trackd.read_run(run.dir).config["lr"] == 0.2


def test_bad_sources() -> None:
    with pytest.raises(ConfigError, match="cannot read a int"):
        trackd.init(project="p", config=5)
    with pytest.raises(ConfigError, match="cannot read 'missing.yaml'"):
        trackd.init(project="p", config="missing.yaml")


def test_config_defaults_yaml_beside_script(tmp_path: Path) -> None:
    (tmp_path / "config-defaults.yaml").write_text("lr:\n  value: 0.01\nepochs: 3\n")
    result = run_script(
        """
        import trackd
        run = trackd.init(project="p", config={"epochs": 5})
        print(run.config.lr, run.config.epochs)
        trackd.finish()
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0.01", "5"]
    assert trackd.read_run(only_run_dir()).config == {"lr": 0.01, "epochs": 5}
