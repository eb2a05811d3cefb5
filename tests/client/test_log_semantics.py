"""log() step semantics, values and summaries, read back through the real daemon and run log."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import trackd
from trackd.errors import UsageError


def _finish_and_read(run: trackd.Run) -> trackd.RunData:
    run.finish()
    return trackd.read_run(run.dir)


def _steps(data: trackd.RunData) -> list[int]:
    return [row["_step"] for row in data.history]


def test_auto_increment_and_explicit_steps() -> None:
    run = trackd.init(project="p")
    trackd.log({"a": 1})
    trackd.log({"a": 2})
    assert run.step == 2
    trackd.log({"b": 3}, step=5)  # moves to 5, row stays open
    trackd.log({"c": 4}, step=5)  # same step: merged
    trackd.log({"a": 5})  # commits step 5 with a, b, c
    data = _finish_and_read(run)
    assert _steps(data) == [0, 1, 5]
    assert {k: v for k, v in data.history[2].items() if not k.startswith("_")} == {
        "a": 5,
        "b": 3,
        "c": 4,
    }


def test_commit_false_accumulates_into_one_row() -> None:
    run = trackd.init(project="p")
    trackd.log({"loss": 1.0}, commit=False)
    trackd.log({"acc": 0.5}, commit=False)
    trackd.log({"lr": 0.1})
    trackd.log({"loss": 0.5}, step=3, commit=True)
    data = _finish_and_read(run)
    assert _steps(data) == [0, 3]
    assert data.history[0]["loss"] == 1.0 and data.history[0]["acc"] == 0.5
    assert data.history[0]["lr"] == 0.1
    assert run.step == 4


def test_open_row_is_committed_by_finish() -> None:
    run = trackd.init(project="p")
    trackd.log({"x": 1}, step=7)
    data = _finish_and_read(run)
    assert _steps(data) == [7]


def test_lower_step_dropped_with_one_warning() -> None:
    run = trackd.init(project="p")
    trackd.log({"a": 1}, step=10)
    with pytest.warns(UserWarning, match=r"step 3 is lower than the current step 10") as seen:
        trackd.log({"a": 2}, step=3)
        trackd.log({"a": 3}, step=4)
    assert len(seen) == 1
    data = _finish_and_read(run)
    assert [r["a"] for r in data.history] == [1]


def test_values_nested_numpy_nan_inf_strings() -> None:
    run = trackd.init(project="p")
    trackd.log(
        {
            "loss": float("nan"),
            "up": math.inf,
            "down": -math.inf,
            "big": 2**63 - 1,
            "flag": True,
            "note": "hello",
            "none": None,
            "np32": np.float32(0.25),
            "npint": np.int64(7),
            "zero_d": np.array(1.5),
            "masks": {"true": 1, "pred": {"x": 2}},
        }
    )
    row = _finish_and_read(run).history[0]
    assert math.isnan(row["loss"]) and row["up"] == math.inf and row["down"] == -math.inf
    assert row["big"] == 2**63 - 1 and row["flag"] is True and row["note"] == "hello"
    assert row["none"] is None and row["np32"] == 0.25 and row["npint"] == 7
    assert row["zero_d"] == 1.5 and row["masks.true"] == 1 and row["masks.pred.x"] == 2


def test_torch_scalar_tensor() -> None:
    torch = pytest.importorskip("torch")
    run = trackd.init(project="p")
    trackd.log({"t": torch.tensor(0.5), "i": torch.tensor([3])})
    row = _finish_and_read(run).history[0]
    assert row["t"] == 0.5 and row["i"] == 3


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        ({"acc": ["a", "b"]}, r"key 'acc' is a list of str; log a number"),
        ({"acc": object()}, r"key 'acc' is a object"),
        ({"w": np.array([object()])}, r"key 'w' \(a numpy array\) is a ndarray of dtype object"),
        ({1: 0.5}, r"key 1 .* is a int; keys must be str"),
        ([("a", 1)], r"data is a list of tuple; pass a dict"),
        ({"huge": 2**70}, r"key 'huge' is an int that does not fit in 64 bits"),
        ({"k" * 600: 1}, r"keys may have at most 512"),
        ({"text": "é" * (1 << 19) + "x"}, r"key 'text' is a str of 1048577 bytes; at most"),
    ],
)
def test_bad_values_raise_at_call_site(data: object, pattern: str) -> None:
    run = trackd.init(project="p")
    with pytest.raises((TypeError, ValueError), match=pattern):
        trackd.log(data)  # type: ignore[arg-type]
    trackd.log({"ok": 1})
    data_back = _finish_and_read(run)
    assert [r["ok"] for r in data_back.history] == [1]


def test_small_tensor_is_a_list() -> None:
    torch = pytest.importorskip("torch")
    run = trackd.init(project="p")
    run.log({"w": torch.zeros(2)})
    assert _finish_and_read(run).history[0]["w"] == [0.0, 0.0]


def test_summary_last_value_explicit_and_defined_metrics() -> None:
    run = trackd.init(project="p")
    run.define_metric("val/*", summary="min,max,mean")
    run.define_metric("acc", summary="best", goal="maximize")
    run.define_metric("hidden", summary="none")
    run.define_metric("first_key", summary="first")
    for i, (loss, acc) in enumerate([(3.0, 0.1), (1.0, 0.9), (2.0, 0.5)]):
        run.log({"loss": loss, "val/loss": loss, "acc": acc, "hidden": i, "first_key": i})
    run.summary["best_epoch"] = 1
    assert run.summary["loss"] == 2.0
    data = _finish_and_read(run)
    s = data.summary
    assert s["loss"] == 2.0
    assert s["val/loss"] == {"min": 1.0, "max": 3.0, "mean": 2.0}
    assert s["acc"] == {"best": 0.9}
    assert "hidden" not in s
    assert s["first_key"] == {"first": 0}
    assert s["best_epoch"] == 1
    assert data.summary == run.summary.as_dict()


def test_explicit_summary_overrides_last_value() -> None:
    run = trackd.init(project="p")
    run.log({"loss": 1.0})
    run.summary.update({"loss": 0.1})
    run.log({"loss": 2.0})
    assert _finish_and_read(run).summary["loss"] == 0.1


def test_define_metric_errors() -> None:
    run = trackd.init(project="p")
    with pytest.raises(UsageError, match="summary mode 'median' is not one of"):
        run.define_metric("loss", summary="median")
    with pytest.raises(UsageError, match="goal 'up' is not"):
        run.define_metric("loss", goal="up")
    run.finish()


def test_log_after_finish_and_before_init() -> None:
    with pytest.raises(UsageError, match=r"trackd.log\(\) was called before trackd.init\(\)"):
        trackd.log({"a": 1})
    run = trackd.init(project="p")
    run.finish()
    run.finish()  # idempotent
    with pytest.raises(UsageError, match=f"run '{run.id}' is finished"):
        run.log({"a": 1})


def test_context_manager_marks_failed_on_exception() -> None:
    with pytest.raises(RuntimeError):
        with trackd.init(project="p") as run:
            run.log({"a": 1})
            raise RuntimeError("boom")
    data = trackd.read_run(run.dir)
    assert data.state == "failed" and data.exit_code == 1


def test_init_metadata_and_module_globals() -> None:
    run = trackd.init(
        project="proj", name="my-run", group="g", job_type="train", tags=["a", "b"], notes="n"
    )
    assert trackd.run is run and trackd.config is run.config and trackd.summary is run.summary
    trackd.finish()
    data = trackd.read_run(run.dir)
    assert (data.project, data.name, data.group, data.job_type) == ("proj", "my-run", "g", "train")
    assert data.tags == ["a", "b"] and data.notes == "n" and data.state == "finished"


def test_defaults_name_and_project() -> None:
    run = trackd.init()
    run.finish()
    data = trackd.read_run(run.dir)
    assert data.project == "uncategorized"
    assert len(data.name.split("-")) == 2


def test_disabled_mode_does_nothing_but_works() -> None:
    run = trackd.init(mode="disabled", config={"a": 1})
    run.log({"x": 1})
    assert run.summary["x"] == 1 and run.config.a == 1
    run.finish()


def test_bad_mode_and_resume_arguments() -> None:
    with pytest.raises(UsageError, match="mode 'cloud' is not one of"):
        trackd.init(mode="cloud")
    with pytest.raises(UsageError, match="resume='must' but run 'nope' does not exist"):
        trackd.init(id="nope", resume="must")


def test_local_resume_continues_steps_and_history() -> None:
    run = trackd.init(project="p", id="resume1")
    run.log({"a": 1})
    run.log({"a": 2})
    run.finish()
    run2 = trackd.init(project="p", id="resume1", resume="allow")
    assert run2.step == 2 and run2.dir == run.dir
    run2.log({"a": 3})
    run2.finish()
    data = trackd.read_run(run.dir)
    assert [r["a"] for r in data.history] == [1, 2, 3]
    assert _steps(data) == [0, 1, 2] and data.state == "finished"


def test_step_must_be_int() -> None:
    run = trackd.init(project="p")
    with pytest.raises(TypeError, match="step is a str; pass an int"):
        run.log({"a": 1}, step="3")  # type: ignore[arg-type]
    with warnings.catch_warnings():
        run.log({"a": 1}, step=np.int64(4))  # type: ignore[arg-type]
    assert _steps(_finish_and_read(run)) == [4]


@pytest.mark.parametrize("bad", [".", "..", "a.b", "x" * 65, "a/b", "a\n"])
def test_run_id_rule_is_the_servers(bad: str) -> None:
    with pytest.raises(UsageError, match="use 1-64 letters, digits, '-' or '_'"):
        trackd.init(id=bad)
    assert trackd.run is None


def test_log_refuses_keys_under_system() -> None:
    run = trackd.init(project="p", mode="offline")
    with pytest.raises(ValueError, match="'system/gpu' starts with 'system/', which is reserved"):
        run.log({"loss": 1.0, "system/gpu": 1.0})
    run.log({"system.gpu": 1.0, "systems/ok": 1.0})
    run.finish()
    assert [row["systems/ok"] for row in trackd.read_run(run.dir).history] == [1.0]
