"""trackd.watch(): gradient and parameter histograms of a real (CPU) torch model, read back
from the run log the real daemon wrote."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import trackd
from trackd.errors import UsageError

torch = pytest.importorskip("torch")
nn = torch.nn


class SmallCNN(nn.Module):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 7 * 7, 10)

    def forward(self, x: Any) -> Any:
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


PARAMS = ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc.weight", "fc.bias"]


def _train(model: Any, steps: int, run: trackd.Run, log_model: Any = None) -> None:
    torch.manual_seed(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        run.log({"loss": loss.item()})


def _history(run: trackd.Run) -> list[dict[str, Any]]:
    run.finish()
    return trackd.read_run(run.dir).history


def test_cnn_has_every_histogram_at_every_tenth_step() -> None:
    run = trackd.init(project="p")
    model = SmallCNN()
    trackd.watch(model, log="all", log_freq=10)
    _train(model, 300, run)
    rows = _history(run)
    assert len(rows) == 300
    sizes = dict(model.named_parameters())
    expected = {f"{kind}/{name}" for kind in ("gradients", "parameters") for name in PARAMS}
    for row in rows:
        keys = {k for k in row if k.startswith(("gradients/", "parameters/"))}
        if row["_step"] % 10 == 9:  # the 10th, 20th ... step
            assert keys == expected, row["_step"]
            assert "loss" in row
            for key in keys:
                hist = row[key]
                assert hist["_type"] == "histogram"
                assert (
                    len(hist["values"]) in (1, 64) and len(hist["bins"]) == len(hist["values"]) + 1
                )
                assert sum(hist["values"]) == sizes[key.split("/", 1)[1]].numel()
        else:
            assert not keys, row["_step"]


def test_gradient_histogram_matches_the_gradient() -> None:
    run = trackd.init(project="p")
    model = nn.Linear(50, 1)
    trackd.watch(model, log="gradients", log_freq=1)
    model(torch.randn(4, 50)).sum().backward()
    grad = model.weight.grad.reshape(-1)
    run.log({"step": 0})
    hist = _history(run)[0]["gradients/weight"]
    expected = torch.histc(grad, bins=64, min=grad.min().item(), max=grad.max().item())
    assert hist["values"] == [int(c) for c in expected.tolist()]
    assert hist["bins"][0] == grad.min().item() and hist["bins"][-1] == grad.max().item()


def test_several_models_wrappers_frozen_parameters_and_watching_twice() -> None:
    run = trackd.init(project="p")
    a, b = nn.Linear(3, 2), nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    b[0].weight.requires_grad_(False)  # a parameter without gradients
    wrapped = nn.DataParallel(b)
    trackd.watch([a, wrapped], log="all", log_freq=2)
    trackd.watch(a, log="all", log_freq=2)  # again: replaces its hooks, keeps its prefix
    assert len(a._forward_hooks) == 1 and len(a.weight._backward_hooks) == 1
    for _ in range(4):
        wrapped(a(torch.randn(5, 3))).sum().backward()
        run.log({"x": 1})
    rows = _history(run)
    logged = {k for k in rows[1] if "/" in k}
    assert logged == {
        "gradients/weight",
        "gradients/bias",
        "parameters/weight",
        "parameters/bias",
        "gradients/graph_1.0.bias",  # no 'module.' from DataParallel; no grad for 0.weight
        "gradients/graph_1.1.weight",
        "gradients/graph_1.1.bias",
        "parameters/graph_1.0.weight",
        "parameters/graph_1.0.bias",
        "parameters/graph_1.1.weight",
        "parameters/graph_1.1.bias",
    }
    assert [sorted(k for k in r if "/" in k) == sorted(logged) for r in rows] == [
        False,
        True,
        False,
        True,
    ]


def test_unwatch_and_finish_remove_the_hooks() -> None:
    run = trackd.init(project="p")
    model = nn.Linear(2, 1)
    trackd.watch(model, log="all", log_freq=1)
    model(torch.randn(1, 2)).sum().backward()
    run.log({"a": 1})
    trackd.unwatch(model)
    model(torch.randn(1, 2)).sum().backward()
    run.log({"a": 2})
    trackd.watch(model, log="parameters", log_freq=1)
    run.finish()
    assert not model._forward_hooks and not model.weight._backward_hooks
    model(torch.randn(1, 2)).sum().backward()  # no run: nothing happens, nothing raises
    rows = trackd.read_run(run.dir).history
    assert "gradients/weight" in rows[0] and "gradients/weight" not in rows[1]


def test_bad_calls_are_refused() -> None:
    with pytest.raises(UsageError, match=r"watch\(\): no run is running; call trackd.init\(\)"):
        trackd.watch(nn.Linear(1, 1))
    run = trackd.init(project="p")
    with pytest.raises(TypeError, match=r"watch\(\): str is not a torch.nn.Module"):
        trackd.watch("model")
    with pytest.raises(ValueError, match=r"log is 'weights'; pass 'gradients', 'parameters'"):
        trackd.watch(nn.Linear(1, 1), log="weights")
    with pytest.raises(ValueError, match=r"log_freq is 0; pass an int of 1 or more"):
        trackd.watch(nn.Linear(1, 1), log_freq=0)
    with pytest.warns(UserWarning, match=r"log_graph=True is not supported"):
        trackd.watch(nn.Linear(1, 1), log_graph=True)
    run.finish()


def test_watch_without_torch_says_so_and_torch_is_imported_only_when_used() -> None:
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # as if torch were not installed\n"
        "import numpy as np, trackd\n"
        "run = trackd.init(mode='offline', project='p')\n"
        "run.log({'img': trackd.Image(np.zeros((4, 4))), 'h': trackd.Histogram([1, 2]),\n"
        "         'a': np.arange(50.0), 't': trackd.Table(columns=['a'], data=[[1]])})\n"
        "try:\n"
        "    trackd.watch(object())\n"
        "except trackd.errors.UsageError as exc:\n"
        "    print(exc)\n"
        "trackd.finish()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "watch(): torch is not installed; watch() logs torch models" in out.stdout


def test_sparse_gradients_count_their_zeros() -> None:
    run = trackd.init(project="p")
    model = nn.Embedding(100, 4, sparse=True)
    trackd.watch(model, log="gradients", log_freq=1)
    model(torch.tensor([1, 2, 2, 7])).sum().backward()
    run.log({"x": 1})
    hist = _history(run)[0]["gradients/weight"]
    # rows 1 and 7 have gradient 1, row 2 (looked up twice) 2, the other 97 rows 0
    assert (hist["bins"][0], hist["bins"][-1]) == (0.0, 2.0)
    assert (hist["values"][0], hist["values"][32], hist["values"][63]) == (388, 8, 4)
    assert sum(hist["values"]) == 400
