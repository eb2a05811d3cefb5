"""trackd.Histogram, and arrays, tensors and lists passed to log(): bins and counts read
back exactly from the run log; NaN and inf counted; each bad input's message."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import trackd
from trackd._histogram import _numpy_bins, _torch_bins, device_histogram, histogram_from_device

from ._rich import logged, logged_row

torch = pytest.importorskip("torch")
RNG = np.random.default_rng(3)


def test_histogram_of_a_sequence_is_numpys() -> None:
    values = RNG.normal(size=1000)
    raw = logged(trackd.Histogram(values, num_bins=20))
    counts, edges = np.histogram(values, bins=20)
    assert raw == {"_type": "histogram", "bins": edges.tolist(), "values": counts.tolist()}
    assert trackd.Histogram([1, 2, 3]).histogram[0] == 1


def test_np_histogram_is_taken_as_it_is() -> None:
    counts, edges = np.histogram(RNG.normal(size=100), bins=7)
    hist = trackd.Histogram(np_histogram=(counts, edges))
    assert hist.bins == edges.tolist() and hist.histogram == counts.tolist()
    assert logged(hist)["values"] == counts.tolist()
    density, edges = np.histogram(RNG.normal(size=100), bins=4, density=True)
    assert logged(trackd.Histogram(np_histogram=(density, edges)))["values"] == density.tolist()


def test_nan_and_inf_are_counted_not_binned() -> None:
    values = np.array([1.0, 2.0, np.nan, np.inf, np.inf, -np.inf, 3.0])
    raw = logged(trackd.Histogram(values, num_bins=2))
    assert raw["values"] == [1, 2] and raw["bins"] == [1.0, 2.0, 3.0]
    assert (raw["nan"], raw["inf"], raw["-inf"]) == (1, 2, 1)
    only_nan = logged(trackd.Histogram([math.nan, math.nan]))
    assert sum(only_nan["values"]) == 0 and only_nan["nan"] == 2


def test_tensor_histogram_is_computed_on_its_device_with_histc_bins() -> None:
    t = torch.randn(5000)
    raw = logged(trackd.Histogram(t, num_bins=30))
    expected = torch.histc(t, bins=30, min=t.min().item(), max=t.max().item())
    assert raw["values"] == [int(c) for c in expected.tolist()]
    assert raw["bins"][0] == t.min().item() and raw["bins"][-1] == t.max().item()
    assert len(raw["bins"]) == 31


def test_device_histogram_counts_non_finite_and_constant_values() -> None:
    t = torch.tensor([1.0, float("nan"), float("inf"), -float("inf"), 1.0])
    hist = histogram_from_device(device_histogram(t, 8).tolist(), 8)
    assert hist["values"] == [2] and hist["bins"] == [1.0, 1.0]
    assert (hist["nan"], hist["inf"], hist["-inf"]) == (1, 1, 1)
    empty = histogram_from_device(device_histogram(torch.zeros(0), 4).tolist(), 4)
    assert empty["values"] == [0, 0, 0, 0] and empty["bins"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    half = histogram_from_device(device_histogram(torch.arange(8).half(), 4).tolist(), 4)
    assert half["values"] == [2, 2, 2, 2]


def test_arrays_tensors_and_lists_in_log_follow_wandb() -> None:
    big = RNG.normal(size=(6, 7))  # 42 numbers: a 64-bin histogram
    row = logged_row(
        {
            "big": big,
            "small": np.arange(6).reshape(2, 3),  # a list (flattened)
            "one": np.array([2.5]),  # a number
            "tbig": torch.arange(100.0),
            "tsmall": torch.tensor([[1, 2], [3, 4]]),
            "list": [1, 2.5, np.float32(0.5), True],
            "empty": [],
            "nan_arr": np.array([np.nan] * 40 + [1.0, 2.0]),
        }
    )
    counts, edges = np.histogram(big.reshape(-1), bins=64)
    assert row["big"] == {"_type": "histogram", "bins": edges.tolist(), "values": counts.tolist()}
    assert row["small"] == [0, 1, 2, 3, 4, 5] and row["one"] == 2.5
    assert row["tbig"]["_type"] == "histogram" and sum(row["tbig"]["values"]) == 100
    assert len(row["tbig"]["values"]) == 64
    assert row["tsmall"] == [1, 2, 3, 4] and row["list"] == [1, 2.5, 0.5, True]
    assert row["empty"] == []
    assert row["nan_arr"]["nan"] == 40 and sum(row["nan_arr"]["values"]) == 2


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"sequence": [1], "num_bins": 513}, ValueError, r"num_bins is 513; pass 1 to 512"),
        ({"sequence": [1], "num_bins": 2.5}, TypeError, r"num_bins is 2.5; pass an int"),
        ({}, ValueError, r"pass either sequence .* or np_histogram"),
        ({"sequence": ["a", "b"]}, TypeError, r"sequence is a list of dtype <U1; pass numbers"),
        ({"np_histogram": ([1, 2], [0, 1])}, ValueError, r"has 2 counts and 2 edges"),
        ({"np_histogram": [1, 2, 3]}, TypeError, r"np_histogram is a list; pass the"),
        ({"np_histogram": ([1], [1, 0])}, ValueError, r"edges must be finite and increasing"),
        ({"np_histogram": ([-1], [0, 1])}, ValueError, r"counts must be finite and not negative"),
    ],
)
def test_bad_histograms_are_refused(
    kwargs: dict[str, Any], error: type[Exception], pattern: str
) -> None:
    with pytest.raises(error, match=pattern):
        trackd.Histogram(**kwargs)


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        (["a", "b"], r"key 'v' is a list of str; log a number, a list of numbers"),
        ([[1, 2], [3]], r"key 'v' is a list of list; log a number"),
        ([2**70], r"key 'v' is a list holding 1180591620717411303424 \(int\)"),
        (np.array(["a", "b"]), r"key 'v' \(a numpy array\) is a ndarray of dtype <U1"),
        (torch.zeros(3, dtype=torch.complex64), r"key 'v' is a complex torch tensor"),
    ],
)
def test_bad_arrays_and_lists_are_refused(value: Any, pattern: str) -> None:
    run = trackd.init(project="p")
    with pytest.raises((TypeError, ValueError), match=pattern):
        run.log({"v": value})
    run.finish()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_accelerator_path_bins_like_the_cpu_path(dtype: str) -> None:
    """The torch-ops path (used on a GPU) gives the numpy path's numbers; run here on CPU."""
    values = RNG.normal(size=3000).astype(dtype)
    values[::97] = np.nan
    values[5], values[6] = np.inf, -np.inf
    for data in (values, values[:0], np.full(5, 2.0, dtype=dtype), np.array([np.nan], dtype)):
        expected = _numpy_bins(data, 64)
        got = _torch_bins(torch, torch.from_numpy(data), 64).numpy()
        assert np.array_equal(got, expected), data[:5]
