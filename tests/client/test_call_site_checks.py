"""What the server cannot store is refused in the training process, at the call, with an
error naming the argument, the value and the fix; nothing already logged is lost."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import trackd
from trackd.errors import ConfigError, UsageError


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"x": 1.0}
    for _ in range(depth):
        value = {"a": value}
    return value


def _history(run: trackd.Run) -> list[dict[str, Any]]:
    run.finish()
    return trackd.read_run(run.dir).history


@pytest.mark.parametrize("step", [2**63, 2**63 - 1, 2**70])
def test_step_outside_int64_is_refused(step: int) -> None:
    run = trackd.init(project="p")
    run.log({"loss": 1.0})
    with pytest.raises(ValueError, match=rf"log\(\): step {step} is outside 0..2\*\*63-2"):
        run.log({"loss": 0.0}, step=step)
    run.log({"loss": 2.0})
    assert [r["loss"] for r in _history(run)] == [1.0, 2.0]


def test_deep_log_dict_is_refused_without_recursion_error() -> None:
    run = trackd.init(project="p")
    with pytest.raises(ValueError, match="nested more than 32 levels deep"):
        run.log(_nested(1000))
    run.log(_nested(10))
    assert len(_history(run)) == 1


@pytest.mark.parametrize(
    ("config", "pattern"),
    [
        (_nested(500), r"config\['a'\].*nested more than 32 levels deep"),
        ({"big": 2**70}, r"config\['big'\] is an int outside int64"),
        ({"s": "a\0b"}, r"config\['s'\] is a str holding a NUL character"),
        ({"a\0": 1}, r"key 'a\\x00' holds a NUL character"),
    ],
)
def test_bad_config_is_refused(config: dict[str, Any], pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        trackd.init(project="p", config=config)
    run = trackd.init(project="p", config={"lr": 0.1})
    with pytest.raises(ConfigError, match=pattern.replace("init", "")):
        run.config.update(config)
    run.finish()
    assert trackd.read_run(run.dir).config == {"lr": 0.1}


def test_nul_in_keys_and_strings_is_refused() -> None:
    run = trackd.init(project="p")
    with pytest.raises(ValueError, match=r"key 'a\\x00b' holds a NUL character"):
        run.log({"a\0b": 1.0})
    with pytest.raises(ValueError, match="value for key 'txt' is a str holding a NUL"):
        run.log({"txt": "x\0y"})
    with pytest.raises(ValueError, match=r"summary: key 'k\\x00' holds a NUL"):
        run.summary["k\0"] = 1
    run.log({"ok": 1.0})
    assert _history(run)[0]["ok"] == 1.0


@pytest.mark.parametrize("param", ["name", "group", "job_type", "notes"])
def test_non_str_init_texts_are_refused(param: str) -> None:
    with pytest.raises(TypeError, match=rf"init\(\): {param} is a int; pass a str"):
        trackd.init(project="p", **{param: 3})
    assert trackd.run is None


def test_bad_project_name_and_tags_are_refused() -> None:
    with pytest.raises(UsageError, match=r"project 'my project' is not a valid name"):
        trackd.init(project="my project")
    with pytest.raises(ValueError, match=r"tags\[1\] is a str holding a NUL"):
        trackd.init(project="p", tags=["ok", "bad\0"])


def test_step_metric_must_be_a_str() -> None:
    run = trackd.init(project="p")
    with pytest.raises(UsageError, match="step_metric is a int; pass the name of a logged key"):
        run.define_metric("val/*", step_metric=3)  # type: ignore[arg-type]
    run.finish()


@pytest.mark.parametrize("code", [2**63, -(2**63) - 1, "1", 1.5])
def test_exit_code_must_fit_int64(code: Any) -> None:
    run = trackd.init(project="p")
    with pytest.raises(UsageError, match=r"finish\(\): exit_code .* is not an int from"):
        run.finish(exit_code=code)
    assert run.state == "running"
    run.finish(exit_code=2)
    data = trackd.read_run(run.dir)
    assert (data.state, data.exit_code) == ("failed", 2)


def test_record_over_the_size_limit_is_refused() -> None:
    run = trackd.init(project="p")
    big = "x" * (1 << 20)  # one value may be 1 MiB; nine of them make a record over 8 MiB
    with pytest.raises(ValueError, match="the row of step 0 is .* bytes once encoded"):
        run.log({f"k{i}": big for i in range(9)})
    run.log({"k0": big})
    assert len(_history(run)) == 1


def test_run_is_none_after_finish() -> None:
    run = trackd.init(project="p")
    assert trackd.run is run
    run.finish()
    assert trackd.run is None and trackd.config is None and trackd.summary is None
    trackd.init(project="p")
    trackd.finish()
    assert trackd.run is None


def test_sys_exit_code_is_recorded(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys, trackd
        run = trackd.init(project="p")
        print(run.dir, flush=True)
        run.log({"a": 1.0})
        sys.exit(3)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 3, out.stderr
    data = trackd.read_run(out.stdout.strip())
    assert (data.state, data.exit_code) == ("failed", 3)


def test_offline_resume_finds_only_its_own_run() -> None:
    other = trackd.init(project="p", id="exp-1")
    other.log({"a": 1.0})
    other.finish()
    run = trackd.init(project="p", id="1", resume="allow")
    assert run.dir != other.dir and run.step == 0
    run.finish()


def test_run_metadata_changed_after_init_is_logged() -> None:
    run = trackd.init(project="p", name="first")
    run.name = "second"
    run.notes = "why"
    run.tags = ("a", "b")
    with pytest.raises(TypeError, match="name is a int"):
        run.name = 5
    assert (run.name, run.notes, run.tags) == ("second", "why", ("a", "b"))
    run.finish()
    data = trackd.read_run(run.dir)
    assert (data.name, data.notes, data.tags) == ("second", "why", ["a", "b"])


def test_run_files_are_private_to_their_user() -> None:
    import stat

    old = os.umask(0o022)  # the usual umask, under which files were world-readable
    try:
        run = trackd.init(project="p")
        run.log({"a": 1.0})
        run.finish()
    finally:
        os.umask(old)
    run_dir = Path(run.dir)
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((run_dir / "run.trackd").stat().st_mode) == 0o600
